// The gap between sequential step pods on the real node, against the kubelet's own floor.
// Runs on the stack `causeway dev up --runtime kubernetes` started in CAUSEWAY_HOME:
//   - a 10-step sequential build (default image): each task prints the clock when it starts,
//     works 2 s (so that its log is followed live, as a real step's is: the kubelet ends a
//     followed stream up to a second after the last write) and prints it when it ends; the gap
//     of step i is start(i) − end(i−1): the runtime's work, the log's end, Temporal, the pod's
//     creation, scheduling, sandbox, image, container start;
//   - the floor: a bare pod of the same image created through the API, from the POST to its
//     container printing the clock (scheduling, sandbox, image, container start only).
//   - pod-to-pod artifacts: producer → consumer pairs, the producer writing a 200 MB tree of
//     random files into its output; the consumer's gap minus the median gap of as many consumers
//     of an empty output (which pay the input-fetcher's container like any consumer, since plain
//     steps have none; one such gap alone varied by seconds under load) is the transfer
//     (streamer → fetcher, tar over HTTP), against `tar c | tar x` of such a tree on the machine;
//   - the agents alone: a fetcher pod pulling the tree from a streamer pod, timed inside the
//     fetcher's pod (less a fetch of an empty output), against `tar c | tar x` in a pod.
// Goals: median gap ≤ 1.3 × median floor; artifact throughput ≥ 0.8 × tar's. Prints a table and
// writes its section of BENCHMARKS.md.
//
//   sudo ./bin/causeway dev up --runtime kubernetes
//   npm run bench:k8s-steps -- [--steps 10] [--work 2] [--floor 5] [--pairs 3] [--mb 200] [--out BENCHMARKS.md]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { awaitBuild, startBuild } from '../common/build-client';
import { collectLogs } from '../common/build-log';
import { causewayDataConverter, loadCodecKeys } from '../common/codec';
import { causewayHome, readEnv } from '../common/config';
import { connectNats } from '../common/nats';
import { compilePlan } from '../schemas';
import { readDevKubernetes, DEV_NAMESPACE } from '../cli/dev/kubernetes';
import { readCluster } from '../cli/dev/k8s/cluster';
import { request, type Tls } from '../cli/dev/k8s/procs';
import { repoRoot } from '../cli/dev/stack';
import { readState } from '../cli/dev/state';
import { runMain, writeSection } from './report';

const MARKS = { start: '<!-- bench:k8s-steps:start -->', end: '<!-- bench:k8s-steps:end -->' };
const CLOCK = 'date +%s%N';

function arg(name: string, fallback: number | string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : String(fallback);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (ns: bigint) => Number(ns / 1_000_000n);

/** Runs a bare pod of image with a shell script to its end; its log, and when it was POSTed (ns). */
async function runBarePod(server: string, tls: Tls, image: string, name: string, script: string): Promise<{ log: string; posted: bigint }> {
  const pod = {
    metadata: { name },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'main', image, command: ['sh', '-c', script] }],
    },
  };
  const posted = BigInt(Date.now()) * 1_000_000n;
  const res = await request(`${server}/api/v1/namespaces/${DEV_NAMESPACE}/pods`, tls, 'POST', JSON.stringify(pod));
  if (res.status !== 201) throw new Error(`creating ${name}: HTTP ${res.status} ${res.body}`);
  for (;;) {
    const p = JSON.parse((await request(`${server}/api/v1/namespaces/${DEV_NAMESPACE}/pods/${name}`, tls)).body) as {
      status?: { phase?: string };
    };
    if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const log = (await request(`${server}/api/v1/namespaces/${DEV_NAMESPACE}/pods/${name}/log`, tls)).body.trim();
  await request(`${server}/api/v1/namespaces/${DEV_NAMESPACE}/pods/${name}`, tls, 'DELETE');
  return { log, posted };
}

async function floorOnce(server: string, tls: Tls, image: string, i: number): Promise<number> {
  const { log, posted } = await runBarePod(server, tls, image, `bench-floor-${Date.now()}-${i}`, CLOCK);
  return ms(BigInt(log) - posted);
}

/**
 * `tar c | tar x` inside a pod of the node: the same CPU share as the agents get. (Containers
 * sit in containerd's cgroup, which competes with every busy process at the root as one: on a
 * loaded machine a pod gets a fraction of what a host process gets.)
 */
async function podTarMs(server: string, tls: Tls, image: string, mb: number, runs: number): Promise<number> {
  const script = `${TREE('/tmp/src', mb)}; for r in $(seq ${runs}); do rm -rf /tmp/dst; mkdir /tmp/dst; t=$(${CLOCK}); tar -C /tmp/src -cf - . | tar -C /tmp/dst -xf -; echo $(( ($(${CLOCK}) - t) / 1000000 )); done`;
  const { log } = await runBarePod(server, tls, image, `bench-tar-${Date.now()}`, script);
  return median(log.split('\n').map(Number));
}

/**
 * The agents alone, pod to pod, timed inside the consumer: a producer pod of the agent image
 * serves the tree and an empty output; a consumer pod of it fetches each in turn. A fetch of the
 * tree less the next fetch of the empty output (the fetcher's start and request) is the transfer,
 * without the step gaps around it that vary by seconds under load. ms, median of runs.
 */
async function agentPodMs(server: string, tls: Tls, image: string, mb: number, runs: number): Promise<number> {
  const name = `bench-serve-${Date.now()}`;
  const env = `export CAUSEWAY_ARTIFACT_TOKEN=bench CAUSEWAY_WORKDIR=/tmp/w`;
  const outputs = `export CAUSEWAY_OUTPUTS='[{"name":"o","path":"out"},{"name":"e","path":"empty"}]'`;
  const serve = `${TREE('/tmp/w/out', mb)} && mkdir -p /tmp/w/empty && ${env} && ${outputs} && exec causeway-agent serve`;
  const pod = {
    metadata: { name },
    spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 0, containers: [{ name: 'main', image, command: ['sh', '-c', serve] }] },
  };
  const url = `${server}/api/v1/namespaces/${DEV_NAMESPACE}/pods`;
  const res = await request(url, tls, 'POST', JSON.stringify(pod));
  if (res.status !== 201) throw new Error(`creating ${name}: HTTP ${res.status} ${res.body}`);
  try {
    let ip: string | undefined;
    while (!ip) {
      await new Promise((r) => setTimeout(r, 100));
      ip = (JSON.parse((await request(`${url}/${name}`, tls)).body) as { status?: { podIP?: string } }).status?.podIP;
    }
    // The first fetch waits (the fetcher retries) while the producer writes its tree.
    const fetch = (output: string) =>
      `rm -rf /tmp/w; mkdir -p /tmp/w; CAUSEWAY_INPUTS='[{"name":"i","path":"i","url":"http://${ip}:7788/artifacts/${output}"}]' causeway-agent fetch || exit 1`;
    const script = `${env}; ${fetch('empty')}; for r in $(seq ${runs}); do t=$(${CLOCK}); ${fetch('out')}; u=$(${CLOCK}); ${fetch('empty')}; v=$(${CLOCK}); echo $(( (u - t - (v - u)) / 1000000 )); done`;
    const { log } = await runBarePod(server, tls, image, `bench-fetch-${Date.now()}`, script);
    const times = log.split('\n').map(Number);
    if (times.length !== runs || times.some(Number.isNaN)) throw new Error(`the agents' fetch pod: ${log}`);
    return median(times);
  } finally {
    await request(`${url}/${name}`, tls, 'DELETE');
  }
}

/** MB files of 1 MiB random bytes in dir (the same tree the producer pods write). */
const TREE = (dir: string, mb: number) => `mkdir -p ${dir} && for i in $(seq ${mb}); do head -c 1048576 /dev/urandom > ${dir}/f$i; done`;

/** `tar c | tar x` of an MB-MiB tree on this machine: ms, median of runs. */
function localTarMs(mb: number, runs: number): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-k8s-tar-'));
  try {
    execFileSync('sh', ['-c', TREE(`${dir}/src`, mb)]);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      fs.rmSync(`${dir}/dst`, { recursive: true, force: true });
      fs.mkdirSync(`${dir}/dst`);
      const t = process.hrtime.bigint();
      execFileSync('sh', ['-c', `tar -C ${dir}/src -cf - . | tar -C ${dir}/dst -xf -`]);
      times.push(ms(process.hrtime.bigint() - t));
    }
    return median(times);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const steps = Number(arg('steps', 10));
  const work = Number(arg('work', 2));
  const floors = Number(arg('floor', 5));
  const pairs = Number(arg('pairs', 3));
  const mb = Number(arg('mb', 200));
  const out = arg('out', path.join(repoRoot(__dirname), 'BENCHMARKS.md'));
  const home = causewayHome();
  const stack = readState(home);
  const k8s = readDevKubernetes(home);
  if (!stack || !k8s)
    throw new Error(`no dev stack with kubernetes in ${home}: start one with \`sudo causeway dev up --runtime kubernetes\``);
  const cluster = readCluster(k8s.dir);
  const tls: Tls = {
    ca: fs.readFileSync(cluster.caFile),
    cert: fs.readFileSync(cluster.adminCert),
    key: fs.readFileSync(cluster.adminKey),
  };
  const image = cluster.node!.images.task;

  const floor: number[] = [];
  for (let i = 0; i < floors; i++) floor.push(await floorOnce(cluster.server, tls, image, i));

  const clocks = `echo start $(${CLOCK}); echo end $(${CLOCK})`;
  const working = `echo start $(${CLOCK}); sleep ${work}; echo end $(${CLOCK})`;
  const plain = Array.from(
    { length: steps },
    (_, i) => `- task: s${i}\n  config: {platform: linux, run: {path: sh, args: [-c, '${working}']}}\n`,
  );
  // Step s(steps+2k) writes into out<k>, the next step reads it; pairs alternate between the
  // tree (even k) and an empty output (odd k), whose consumers' gaps are the baseline. The empty
  // producer sleeps a second as the tree's takes seconds to write: a task ending while the kubelet
  // still starts its pod's streamer is reported up to 5 s late under EventedPLEG (docs/kubernetes.md).
  const artifactSteps = Array.from({ length: 2 * pairs }, (_, k) => [
    `- task: produce${k}\n  config: {platform: linux, outputs: [{name: out${k}}], run: {path: sh, args: [-c, '${k % 2 === 0 ? TREE(`out${k}`, mb) : `${TREE(`out${k}`, 0)}; sleep 1`}; ${clocks}']}}\n`,
    `- task: consume${k}\n  config: {platform: linux, inputs: [{name: out${k}}], run: {path: sh, args: [-c, '${clocks}; du -sm out${k}']}}\n`,
  ]).flat();
  const plan = compilePlan({ file: 'k8s-steps.yml', text: `plan:\n${[...plain, ...artifactSteps].join('')}` });
  const connection = await Connection.connect({ address: stack.temporal.address });
  const nc = await connectNats(stack.nats.url, 'bench-k8s-steps');
  try {
    const handle = await startBuild(new Client({ connection, dataConverter: causewayDataConverter(loadCodecKeys({ home })) }), {
      plan,
      taskQueue: readEnv().CAUSEWAY_TASK_QUEUE,
    });
    const outcome = await awaitBuild(handle);
    if (outcome.status !== 'succeeded') throw new Error(`the build ${handle.workflowId} ${outcome.status}`);
    const logs = await collectLogs(nc, handle.workflowId);
    const times = Array.from({ length: steps + 4 * pairs }, (_, i) => {
      const text = logs.get(`plan.${i}`) ?? '';
      const start = /start (\d+)/.exec(text)?.[1];
      const end = /end (\d+)/.exec(text)?.[1];
      if (!start || !end) throw new Error(`step plan.${i} printed no clock: ${text}`);
      return { start: BigInt(start), end: BigInt(end) };
    });
    const gaps = times.slice(1, steps).map((t, i) => ms(t.start - times[i].end));
    const ratio = median(gaps) / median(floor);
    const consumerGap = (k: number) => ms(times[steps + 2 * k + 1].start - times[steps + 2 * k].end);
    const baselines = Array.from({ length: pairs }, (_, k) => consumerGap(2 * k + 1));
    const baseline = median(baselines);
    const transfers = Array.from({ length: pairs }, (_, k) => Math.max(1, consumerGap(2 * k) - baseline));
    const tarMs = localTarMs(mb, 3);
    const podTar = await podTarMs(cluster.server, tls, image, mb, 3);
    const agentPod = await agentPodMs(cluster.server, tls, cluster.node!.images.agent, mb, 5);
    const mbps = (t: number) => (mb * 1.048576) / (t / 1000);
    const throughput = mbps(median(transfers)) / mbps(tarMs);
    const rows = [
      ['measure', 'median', 'min', 'max', 'n'],
      [
        'gap between step pods (end → next start)',
        `${median(gaps)} ms`,
        `${Math.min(...gaps)} ms`,
        `${Math.max(...gaps)} ms`,
        String(gaps.length),
      ],
      [
        'kubelet floor: bare pod POST → container start',
        `${median(floor)} ms`,
        `${Math.min(...floor)} ms`,
        `${Math.max(...floor)} ms`,
        String(floor.length),
      ],
      ['gap / floor (goal ≤ 1.3)', ratio.toFixed(2), '', '', ''],
      [
        `pod → pod artifact, ${mb} MiB (consumer's gap − the median of ${pairs} empty artifacts' consumers' gaps, ${baseline} ms: ${baselines.join(', ')})`,
        `${median(transfers)} ms (${mbps(median(transfers)).toFixed(0)} MB/s)`,
        `${Math.min(...transfers)} ms`,
        `${Math.max(...transfers)} ms`,
        String(pairs),
      ],
      [`\`tar c \\| tar x\` of the same tree on the machine`, `${tarMs} ms (${mbps(tarMs).toFixed(0)} MB/s)`, '', '', '3'],
      ['artifact / tar throughput (goal ≥ 0.8)', throughput.toFixed(2), '', '', ''],
      [`\`tar c \\| tar x\` of the same tree inside a pod of the node`, `${podTar} ms (${mbps(podTar).toFixed(0)} MB/s)`, '', '', '3'],
      ['artifact / in-pod tar throughput', (mbps(median(transfers)) / mbps(podTar)).toFixed(2), '', '', ''],
      [
        'the agents alone pod → pod, timed in the consumer pod (fetch of the tree − fetch of an empty output)',
        `${agentPod} ms (${mbps(agentPod).toFixed(0)} MB/s)`,
        '',
        '',
        '5',
      ],
      ['agents alone / in-pod tar throughput', (mbps(agentPod) / mbps(podTar)).toFixed(2), '', '', ''],
    ];
    const table = [
      `| ${rows[0].join(' | ')} |`,
      `|${rows[0].map(() => '---').join('|')}|`,
      ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`),
    ].join('\n');
    const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const text = `${MARKS.start}\n## k8s-steps: gap between sequential step pods on the real node\n\n\`node dist/bench/k8s-steps.js\` on \`causeway dev up --runtime kubernetes\` (${new Date().toISOString()}, load ${load}); ${steps} sequential steps of the default task image, each printing the clock at its start and, ${work} s later, at its end; the floor is a bare pod of the same image created through the API. Then ${pairs} producer → consumer pairs moving ${mb} MiB of random files pod to pod through the agents, each followed by a pair moving an empty output.\n\n${table}\n${MARKS.end}`;
    console.log(table);
    writeSection(out, MARKS, text);
  } finally {
    await nc.close();
    await connection.close();
  }
}

runMain(main);
