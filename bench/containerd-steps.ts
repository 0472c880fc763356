// Step overhead of the containerd runtime: the same plan of N sequential trivial tasks on a
// local-runtime worker (a host process per step) and on a containerd-runtime worker (a container
// per step, from busybox pulled once before the measured builds), alternating, in one run.
// Goal: a container step costs ≤ 1.5 × a host-process step, and the image is paid for once
// (no pull during the measured builds). Where the worker runs crun, the same container steps
// with runc too (a third worker, `--oci-runtime runc`), alternating. Also an artifact's hand-off between two containers: a
// build whose second step takes the first's N MB output as its input, against the same build whose
// second step takes none. Prints tables and writes its section of BENCHMARKS.md.
//
//   sudo npm run bench:containerd-steps -- [--steps 20] [--repeat 3] [--hand-off-mb 200] [--out BENCHMARKS.md]
//
// Self-contained: its own in-memory Temporal and NATS, its own containerd and registry
// (cli/dev/containerd.ts) in a temporary directory, two or three in-process workers; all stopped at the end.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { DEV_DEFAULT_IMAGE, startContainerd, stopContainerd } from '../cli/dev/containerd';
import { repoRoot, startStackOnFreePorts, stopStack, type StackInfo } from '../cli/dev/stack';
import { awaitBuild, startBuild } from '../common/build-client';
import { readBuild } from '../common/build-log';
import { causewayDataConverter, loadCodecKeys } from '../common/codec';
import { connectNats } from '../common/nats';
import { compilePlan } from '../schemas';
import { bundleBuildWorkflows } from '../workers/bundle';
import { startLocalWorker, type RunningWorker } from '../workers/local';
import { PHASES_MESSAGE } from '../activities/runtime/containerd/phases';
import { chooseOciRuntime } from '../activities/runtime/containerd/oci-runtime';
import { machine, runMain, writeSection } from './report';

const MARKS = { start: '<!-- bench:containerd-steps:start -->', end: '<!-- bench:containerd-steps:end -->' };
const TARGET_RATIO = 1.5;

function arg(name: string, fallback: number, min = 1): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
  return v;
}

function outFile(): string {
  const i = process.argv.indexOf('--out');
  return i >= 0 && process.argv[i + 1] ? path.resolve(process.argv[i + 1]) : path.join(repoRoot(__dirname), 'BENCHMARKS.md');
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function plan(steps: number, image: boolean): string {
  const task = (i: number) => ({
    task: `t${i}`,
    config: {
      platform: 'linux',
      ...(image ? { image_resource: { type: 'registry-image', source: { repository: 'busybox' } } } : {}),
      run: { path: 'sh', args: ['-c', 'true'] },
    },
  });
  return JSON.stringify({ plan: Array.from({ length: steps }, (_, i) => task(i)) });
}

/** Two containers: the first writes `mb` MB to its output; the second takes it as an input, or takes nothing. */
/** A difference of medians at or below zero is the runs' spread, not a saving. */
const handOffCost = (ms: number) => (ms > 0 ? `${ms.toFixed(0)} ms` : `nothing measurable (${ms.toFixed(0)} ms, within the runs' spread)`);

function handOffPlan(mb: number, withInput: boolean): string {
  const image = { type: 'registry-image', source: { repository: 'busybox' } };
  const sh = (script: string) => ({ path: 'sh', args: ['-c', script] });
  return JSON.stringify({
    plan: [
      {
        task: 'produce',
        config: { platform: 'linux', image_resource: image, outputs: [{ name: 'out' }], run: sh(`head -c ${mb}m /dev/zero > out/blob`) },
      },
      withInput
        ? { task: 'consume', config: { platform: 'linux', image_resource: image, inputs: [{ name: 'out' }], run: sh('ls out >/dev/null') } }
        : { task: 'consume', config: { platform: 'linux', image_resource: image, run: sh('ls . >/dev/null') } },
    ],
  });
}

interface PhaseRecord {
  part: 'path' | 'removal' | 'build end';
  startedAt: number;
  endedAt: number;
  phases: Record<string, number>;
}

/**
 * The containerd worker's logger: its warnings to stderr as the other's, and its debug records
 * of a container step's phases (activities/runtime/containerd/phases.ts) kept while `keep` says so.
 */
function phaseLogger(keep: () => boolean): { log: pino.Logger; records: PhaseRecord[] } {
  const records: PhaseRecord[] = [];
  const stream = {
    write(line: string) {
      const r = JSON.parse(line) as { level: number; msg?: string } & PhaseRecord;
      if (r.msg === PHASES_MESSAGE) {
        if (keep()) records.push(r);
      } else if (r.level >= 40) process.stderr.write(line);
    },
  };
  return { log: pino({ level: 'debug' }, stream), records };
}

async function main(): Promise<void> {
  const steps = arg('steps', 20);
  const repeat = arg('repeat', 3);
  const handOffMb = arg('hand-off-mb', 200, 0);
  const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-bench-containerd-'));
  const workers: RunningWorker[] = [];
  let stack: StackInfo | undefined;
  let connection: Connection | undefined;
  const cdDir = path.join(home, 'containerd');
  try {
    stack = await startStackOnFreePorts({ home, persistent: false, startWorker: false, log: progress });
    const cd = await startContainerd(cdDir, repoRoot(__dirname), progress);
    const bundle = await bundleBuildWorkflows();
    const common = {
      temporalAddress: stack.temporal.address,
      namespace: 'default',
      natsUrl: stack.nats.url,
      home,
      logMaxAgeSeconds: 3600,
      workflowBundle: bundle,
      log: pino({ level: 'warn' }),
    };
    workers.push(await startLocalWorker({ ...common, name: 'bench-local', taskQueue: 'bench-local' }));
    let measuring = false;
    const phaseLog = phaseLogger(() => measuring);
    workers.push(
      await startLocalWorker({
        ...common,
        log: phaseLog.log,
        name: 'bench-containerd',
        taskQueue: 'bench-containerd',
        containerd: { socket: cd.socket, hostsDir: cd.hostsDir, defaultImage: DEV_DEFAULT_IMAGE },
      }),
    );
    // The same containers with runc, which a worker runs where crun cannot (oci-runtime.ts).
    const oci = chooseOciRuntime('auto');
    if (oci.name === 'crun')
      workers.push(
        await startLocalWorker({
          ...common,
          name: 'bench-runc',
          taskQueue: 'bench-runc',
          containerd: { socket: cd.socket, hostsDir: cd.hostsDir, defaultImage: DEV_DEFAULT_IMAGE, ociRuntime: 'runc' },
        }),
      );
    connection = await Connection.connect({ address: stack.temporal.address });
    const client = new Client({ connection, dataConverter: causewayDataConverter(loadCodecKeys({ home })) });
    const nc = await connectNats(stack.nats.url, 'bench', { home });
    const run = async (queue: string, yaml: string): Promise<{ ms: number; buildId: string }> => {
      const t0 = performance.now();
      const handle = await startBuild(client, { plan: compilePlan({ text: yaml, file: 'bench.yml' }), taskQueue: queue });
      const outcome = await awaitBuild(handle);
      if (outcome.status !== 'succeeded') throw new Error(`bench build on ${queue} ${outcome.status}: ${outcome.message ?? ''}`);
      return { ms: performance.now() - t0, buildId: handle.workflowId };
    };
    const pulls = async (buildId: string): Promise<number> => {
      let n = 0;
      for await (const r of readBuild(nc, buildId, { follow: false }))
        if (r.kind === 'log' && r.stream === 'causeway' && /: pulling$/m.test(Buffer.from(r.data).toString('utf8'))) n++;
      return n;
    };
    /**
     * Each step's time from its step-started to its step-finished event (its activity's), and each
     * time from a step-finished to the next step-started (the workflow's hops between two steps).
     */
    const stepTimes = async (buildId: string): Promise<{ steps: number[]; gaps: number[] }> => {
      const times = new Map<string, Record<string, number>>();
      for await (const r of readBuild(nc, buildId, { follow: false }))
        if (r.kind === 'event' && (r.event.type === 'step-started' || r.event.type === 'step-finished')) {
          const t = times.get(r.event.stepId) ?? {};
          t[r.event.type] = Date.parse(r.event.time);
          times.set(r.event.stepId, t);
        }
      const steps = [...times.values()];
      return {
        steps: steps.map((t) => t['step-finished'] - t['step-started']).filter(Number.isFinite),
        gaps: steps
          .slice(1)
          .map((t, i) => t['step-started'] - steps[i]['step-finished'])
          .filter(Number.isFinite),
      };
    };
    /** A step's time from its step-started to its step-finished event: the build's other steps' noise left out. */
    const stepMs = async (buildId: string, stepId: string): Promise<number> => {
      const times: Record<string, number> = {};
      for await (const r of readBuild(nc, buildId, { follow: false }))
        if (r.kind === 'event' && (r.event.type === 'step-started' || r.event.type === 'step-finished') && r.event.stepId === stepId)
          times[r.event.type] = Date.parse(r.event.time);
      const ms = times['step-finished'] - times['step-started'];
      if (!Number.isFinite(ms)) throw new Error(`build ${buildId}: no start and end events of step ${stepId}`);
      return ms;
    };
    progress('warm-up: one build on each worker (the image is pulled here, once)');
    const first = await run('bench-containerd', plan(1, true));
    const firstPulls = await pulls(first.buildId);
    await run('bench-local', plan(1, false));
    if (oci.name === 'crun') await run('bench-runc', plan(1, true));
    const local: number[] = [];
    const container: number[] = [];
    const runc: number[] = [];
    const inside = { local: { steps: [] as number[], gaps: [] as number[] }, container: { steps: [] as number[], gaps: [] as number[] } };
    let measuredPulls = 0;
    for (let r = 0; r < repeat; r++) {
      const l = await run('bench-local', plan(steps, false));
      local.push(l.ms / steps);
      measuring = true;
      const c = await run('bench-containerd', plan(steps, true));
      measuring = false;
      container.push(c.ms / steps);
      measuredPulls += await pulls(c.buildId);
      if (oci.name === 'crun') runc.push((await run('bench-runc', plan(steps, true))).ms / steps);
      for (const [k, buildId] of [
        ['local', l.buildId],
        ['container', c.buildId],
      ] as const) {
        const t = await stepTimes(buildId);
        inside[k].steps.push(...t.steps);
        inside[k].gaps.push(...t.gaps);
      }
      progress(
        `round ${r + 1}/${repeat}: host process ${local.at(-1)!.toFixed(0)} ms/step, container (${oci.name}) ${container.at(-1)!.toFixed(0)} ms/step${runc.length ? `, with runc ${runc.at(-1)!.toFixed(0)}` : ''}`,
      );
    }
    const handOff: number[] = [];
    const noHandOff: number[] = [];
    for (let r = 0; r < (handOffMb > 0 ? repeat : 0); r++) {
      handOff.push(await stepMs((await run('bench-containerd', handOffPlan(handOffMb, true))).buildId, 'plan.1'));
      noHandOff.push(await stepMs((await run('bench-containerd', handOffPlan(handOffMb, false))).buildId, 'plan.1'));
      progress(`hand-off ${r + 1}/${repeat}: with ${handOff.at(-1)!.toFixed(0)} ms, without ${noHandOff.at(-1)!.toFixed(0)} ms`);
    }
    await nc.close();
    const phaseTable = phaseRows(phaseLog.records);
    const insideTable = [
      '| median ms | host process | container |',
      '|---|---|---|',
      `| a step's activity (step-started to step-finished) | ${median(inside.local.steps)} | ${median(inside.container.steps)} |`,
      `| between two steps (step-finished to the next step-started) | ${median(inside.local.gaps)} | ${median(inside.container.gaps)} |`,
    ].join('\n');
    const ratio = median(container) / median(local);
    const m = machine(stack);
    const table = [
      `| runtime | a step is | median ms per step (${steps} sequential steps, ${repeat} runs) | runs |`,
      '|---|---|---|---|',
      `| local | a host process (\`sh -c true\`) | ${median(local).toFixed(0)} | ${local.map((x) => x.toFixed(0)).join(', ')} |`,
      `| containerd | a container from busybox (cached), ${oci.name} | ${median(container).toFixed(0)} | ${container.map((x) => x.toFixed(0)).join(', ')} |`,
      ...(runc.length
        ? [
            `| containerd | the same with runc (\`--oci-runtime runc\`) | ${median(runc).toFixed(0)} | ${runc.map((x) => x.toFixed(0)).join(', ')} |`,
          ]
        : []),
    ].join('\n');
    const ms = (xs: number[]) => `${median(xs).toFixed(0)} | ${xs.map((x) => x.toFixed(0)).join(', ')}`;
    const handOffTable = handOff.length
      ? [
          `| the second of two containers | median ms of that step (${repeat} runs) | runs |`,
          '|---|---|---|',
          `| takes the first's ${handOffMb} MB output as its input | ${ms(handOff)} |`,
          `| takes no input | ${ms(noHandOff)} |`,
        ].join('\n')
      : '';
    const handOffText = handOff.length
      ? `

${handOffTable}

The ${handOffMb} MB hand-off costs ${handOffCost(median(handOff) - median(noHandOff))} (with / without: ${(median(handOff) / median(noHandOff)).toFixed(2)}×):
an input is a copy-on-write overlay view of the producer's output (the local runtime's
\`activities/runtime/local/inputs.ts\`), seen in the container through the bind of its working directory.
Copied instead (before, \`cp\` of the output), the same step measured 606 ms against 261 ms without input
(medians of 5, 200 MB, load ~20): the copy cost ~345 ms of page-cache copying, growing with the size.`
      : '';
    const verdict = ratio <= TARGET_RATIO ? 'meets' : 'misses';
    const section = `${MARKS.start}
## containerd runtime: a container step against a host-process step (bench/containerd-steps)

${m.date}, ${m.cpus}, ${m.memory}, ${m.os}, Node ${m.node}, load ${m.load}; Debian's containerd, with ${oci.name} (${oci.why}).

${table}

A container step costs **${ratio.toFixed(2)}×** a host-process step (goal ≤ ${TARGET_RATIO}×: ${verdict} it). The image
was pulled ${firstPulls} time(s) in the warm-up build and ${measuredPulls} time(s) in the ${repeat * steps} measured container steps:
each later step prepares a snapshot of the unpacked image (no registry round trip, nothing unpacked again).

Inside the same builds (medians over the measured steps; event times have millisecond resolution):

${insideTable}

Where a container step's time goes, from timestamps taken inside the containerd runtime in this run
(\`activities/runtime/containerd/phases.ts\`, logged at debug level). \`path\`: what the step waits for,
from the runtime's start to the recorded exit status; \`removal\`: what runs after the step's result
is out (the next step does not wait for it, but on 2 cores it competes with it for a CPU); \`build end\`:
the build's \`finishBuild\`, once per build (its \`settle\` waits for the last step's removal):

${phaseTable}

What is left is containerd 1.6's and the OCI runtime's own processes. An strace of this bench with
runc (10 steps, 2026-12-03) counted, per container step, a \`containerd-shim-runc-v2 start\` (containerd
runs the shim binary for every task create, to find the build's shim group's socket: the group saves a
shim's life, not this process), \`runc create\` (which runs \`runc init\` twice: re-executed from a bind of
itself), \`runc start\`, and after the result \`runc delete\`, then a \`containerd-shim-runc-v2 delete\` and
its \`runc delete --force\` (containerd's clean-up when it closes its connection for the task to the shim,
shared or not): seven Go processes, four of them on the path. \`runc create\` + \`start\` by hand on this
host (busybox \`true\`, 25 interleaved runs, load ~9): 45–53 + 9–13 ms, the same with or without the
seccomp filter, the masked and read-only paths, or a network namespace of its own. Since 2026-12-05 a
worker runs crun where it is installed and the host's cgroups let it (docs/containerd.md, "The OCI
runtime"): by hand, 15 interleaved runs at load ~1, create 13–24 ms against runc's 26–39 and start
4–6 against 5–13; whole \`ctr run --rm\` lifecycles 98–138 ms against 137–176. crun had been set aside
because it refuses this host's hybrid cgroup layout while cgroup2 holds a controller (hugetlb, which a
host without systemd leaves there); a v1 hierarchy mounted for it, as systemd does, lets it run. youki
0.7.0, built from crates.io with its cgroup v1 feature, is no faster than runc: create 50–65 ms and start
27–43 ms against runc's 45–63 and 8–15 ms, 6 interleaved runs at load 1.4–3, 2026-12-03.

The next lever is a task created ahead (containerd's task create is the OCI runtime's create, its start
is its start): the \`task create\` row above would leave the path, though not the CPUs, which the next
step and the workflow share on 2 cores. The runtime fixes a container's process (argv, env, cwd, user),
mounts, network and cgroup at create, before the step's inputs and config are known, so it takes a
static helper in the image's root that gets the step's command once started, the step's work directory
mounted under a shared-propagation bind after create, and a container id recorded in the step's
directory instead of derived from it (re-attach, kill and clean-up by that record); only steps with the
spare's image, unprivileged and without limits or services could take one.

History: before the API (\`ctr\` per operation) this bench measured 434 ms against 82 ms (5.3×). One
shim per build, the shim writing the task's output itself and roots prepared ahead (\`spare.ts\`) took
the task's create from ~77 to ~49–75 ms and the root's preparation (~28 ms) off the path, ~12% less
per container step at load 10–15. The build's end through the API instead of a \`ctr\` process per
call (~190 → ~80 ms of removing the build's containers) and one \`umount\` for a step's mounts instead
of three (a step's removal ~120 → ~85 ms) did not show end to end above this machine's noise:
interleaved with the commit before them at load 8.5–15 (20 steps, 2 runs each), container ms/step
before 269, 273, 328, 285, 338, 327, after 238, 198, 318, 321, 298, 305. On 2 cores shared by many
runnable processes a phase's cut is partly paid back in waiting for a CPU, so the ratio needs a
quiet machine to be judged.${handOffText}

Reproduce: \`sudo npm run bench:containerd-steps -- --steps ${steps} --repeat ${repeat} --hand-off-mb ${handOffMb}\`
${MARKS.end}`;
    process.stdout.write(
      `\n${table}\n\n${insideTable}\n\n${phaseTable}\n\nratio ${ratio.toFixed(2)} (goal ≤ ${TARGET_RATIO}); pulls: warm-up ${firstPulls}, measured ${measuredPulls}\n${handOffTable ? `\n${handOffTable}\n` : ''}`,
    );
    writeSection(outFile(), MARKS, section);
  } finally {
    for (const w of workers) await w.shutdown().catch(() => undefined);
    await connection?.close();
    await stopContainerd(cdDir).catch((err) => progress(`containerd stop: ${(err as Error).message}`));
    if (stack) await stopStack(home);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

runMain(main);

/** Median ms of each phase over the measured container steps, on the step's path and after its result. */
function phaseRows(records: PhaseRecord[]): string {
  const rows: string[] = ['| part | phase | median ms | p90 ms |', '|---|---|---|---|'];
  for (const part of ['path', 'removal', 'build end'] as const) {
    const of = records.filter((r) => r.part === part);
    const names = [...new Set(of.flatMap((r) => Object.keys(r.phases)))];
    const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)] ?? 0;
    for (const name of names) {
      const xs = of.map((r) => r.phases[name] ?? 0);
      rows.push(`| ${part} | ${name} | ${median(xs).toFixed(1)} | ${p90(xs).toFixed(1)} |`);
    }
    const totals = of.map((r) => Object.values(r.phases).reduce((a, b) => a + b, 0));
    rows.push(`| ${part} | **total** (${of.length} steps) | ${median(totals).toFixed(1)} | ${p90(totals).toFixed(1)} |`);
  }
  return rows.join('\n');
}
