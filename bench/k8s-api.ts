// What the kubernetes runtime costs the API server: N step pods created and followed to
// their end through the real control plane (etcd, kube-apiserver, controller-manager,
// scheduler, KWOK nodes) that test/k8s/cluster.ts starts, with
//   - API calls and watch events per step, by verb (target: one list and one watch in all, the
//     worker's pod informer's, never one per step), and
//   - wall time for the runtime to create and reconcile N pods to their end,
// against creating the same N pod objects (a) with plain POSTs from the same client, and
// (b) with `kubectl apply -f` of one List, when kubectl is on PATH.
// A fake kubelet ends each task container (exit 0) once KWOK has made its pod Running, for
// the runtime's pods and the baselines' alike, so every variant pays the same scheduling.
// Prints a table and writes its section of BENCHMARKS.md.
//
//   npm run bench:k8s-api -- [--steps 500] [--out BENCHMARKS.md]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { k8s, type CoreV1Api, type KubeConfig, type V1Pod } from '../activities/runtime/kubernetes/client';
import { CONTAINERS, buildPod } from '../activities/runtime/kubernetes/pod';
import { KubernetesRuntime } from '../activities/runtime/kubernetes/runtime';
import type { RunTaskRequest } from '../activities/types';
import { startCluster, stopCluster } from '../test/k8s/cluster';
import { trueTaskStep } from '../test/k8s/task-step';

const MARK_START = '<!-- bench:k8s-api:start -->';
const MARK_END = '<!-- bench:k8s-api:end -->';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const mergePatch = () => k8s().setHeaderOptions('Content-Type', k8s().PatchStrategy.MergePatch);

/**
 * Plays kubelet for a namespace with one watch: each pod KWOK made Running gets its task
 * container terminated (exit 0). Counts what it does, so it is not mistaken for the runtime's cost.
 */
async function fakeKubelet(
  kc: KubeConfig,
  core: CoreV1Api,
  namespace: string,
): Promise<{ stop: () => void; finished: Set<string>; events: () => number }> {
  const finished = new Set<string>();
  let events = 0;
  let resourceVersion: string | undefined;
  let stopped = false;
  let current: AbortController | undefined;
  const end = (pod: V1Pod, name: string) => {
    finished.add(name);
    const now = new Date().toISOString();
    const patch = (): Promise<unknown> =>
      core
        .patchNamespacedPodStatus(
          {
            name,
            namespace,
            body: {
              status: {
                containerStatuses: [
                  {
                    name: CONTAINERS.task,
                    image: 'busybox',
                    imageID: '',
                    ready: false,
                    restartCount: 0,
                    state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now } },
                  },
                ],
              },
            },
          },
          mergePatch(),
        )
        // throttled (429) or busy: a kubelet retries its status update
        .catch(() => new Promise((r) => setTimeout(r, 200)).then(patch));
    void patch();
    void pod;
  };
  // Like an informer: when the server ends the watch (a slow consumer, a timeout), resume it
  // from the last resourceVersion seen.
  const start = async (): Promise<void> => {
    if (stopped) return;
    current = await new (k8s().Watch)(kc).watch(
      `/api/v1/namespaces/${namespace}/pods`,
      { resourceVersion, allowWatchBookmarks: true },
      (type: string, pod: V1Pod) => {
        events++;
        resourceVersion = pod.metadata?.resourceVersion ?? resourceVersion;
        const name = pod.metadata?.name;
        if (type !== 'ADDED' && type !== 'MODIFIED') return;
        if (!name || finished.has(name) || pod.status?.phase !== 'Running' || pod.metadata?.deletionTimestamp) return;
        if (pod.status.containerStatuses?.some((c) => c.name === CONTAINERS.task && c.state?.terminated)) return;
        end(pod, name);
      },
      () => void start(),
    );
  };
  await start();
  return {
    stop: () => {
      stopped = true;
      current?.abort();
    },
    finished,
    events: () => events,
  };
}

async function namespace(core: CoreV1Api, name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name } } });
  for (;;) {
    try {
      await core.readNamespacedServiceAccount({ name: 'default', namespace: name });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Baselines have no runtime following them: wait until the fake kubelet has ended every pod. */
async function waitAll(names: string[], kubelet: { finished: Set<string> }): Promise<void> {
  while (names.some((n) => !kubelet.finished.has(n))) await new Promise((r) => setTimeout(r, 50));
}

async function main(): Promise<void> {
  const steps = Number(arg('steps', '500'));
  // dist/bench/k8s-api.js → the repository's BENCHMARKS.md
  const out = arg('out', path.join(__dirname, '..', '..', 'BENCHMARKS.md'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-bench-k8s-'));
  const log = (line: string) => process.stderr.write(`[bench:k8s-api] ${line}\n`);
  const startedAt = Date.now();
  const cluster = await startCluster({ dir, log });
  log(`control plane ready in ${Date.now() - startedAt} ms`);
  const stop = async () => {
    await stopCluster(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stop().then(() => process.exit(130)));
  try {
    const kc = new (k8s().KubeConfig)();
    kc.loadFromFile(cluster.kubeconfig);
    const core = kc.makeApiClient(k8s().CoreV1Api);
    const rows: { variant: string; ms: number; perStep: string }[] = [];

    // The runtime: N steps of one build, all at once (an in_parallel of N tasks).
    await namespace(core, 'bench-runtime');
    const kubelet = await fakeKubelet(kc, core, 'bench-runtime');
    const rt = new KubernetesRuntime({ namespace: 'bench-runtime', worker: 'bench', kubeConfig: kc, graceSeconds: 1, logDrainMs: 0 });
    const buildId = 'build-bench-k8s-api';
    const t0 = performance.now();
    const progress = setInterval(
      () =>
        log(
          `runtime: ${rt.calls.create} created, ${kubelet.finished.size} ended by the kubelet (${kubelet.events()} events), calls ${JSON.stringify(rt.calls)}`,
        ),
      10_000,
    );
    const outcomes = await Promise.all(
      Array.from({ length: steps }, (_, i) => {
        const req: RunTaskRequest = {
          buildId,
          runId: 'run-1',
          plan: 'bench',
          step: trueTaskStep(i),
          runKey: '1',
          attempt: 1,
          artifacts: {},
        };
        // No log hook: KWOK serves no real logs worth timing.
        return rt.runStep(req);
      }),
    );
    const runtimeMs = performance.now() - t0;
    clearInterval(progress);
    kubelet.stop();
    const failed = outcomes.filter((o) => o.state !== 'succeeded').length;
    if (failed) throw new Error(`${failed} of ${steps} steps did not succeed`);
    rows.push({
      variant: `Causeway runtime: create, watch to the end, delete (${steps} steps)`,
      ms: runtimeMs,
      perStep: (runtimeMs / steps).toFixed(2),
    });
    const calls = { ...rt.calls };

    // (a) plain POSTs of the same pod objects, waiting for the same end (fake kubelet).
    await namespace(core, 'bench-post');
    const kubeletA = await fakeKubelet(kc, core, 'bench-post');
    const anchor = await core.createNamespacedConfigMap({ namespace: 'bench-post', body: { metadata: { name: 'anchor' } } });
    const pods = Array.from({ length: steps }, (_, i) =>
      buildPod({
        namespace: 'bench-post',
        buildId,
        runId: 'run-1',
        step: trueTaskStep(i),
        config: trueTaskStep(i).config!,
        runKey: '1',
        attempt: 1,
        worker: 'bench',
        anchor: { name: 'anchor', uid: anchor.metadata!.uid! },
        tokenSecret: 'token',
      }),
    );
    const t1 = performance.now();
    await Promise.all(pods.map((body) => core.createNamespacedPod({ namespace: 'bench-post', body })));
    const postCreatedMs = performance.now() - t1;
    await waitAll(
      pods.map((p) => p.metadata!.name!),
      kubeletA,
    );
    const postMs = performance.now() - t1;
    kubeletA.stop();
    rows.push({
      variant: `(a) ${steps} plain POSTs (created in ${Math.round(postCreatedMs)} ms), until all ended`,
      ms: postMs,
      perStep: (postMs / steps).toFixed(2),
    });

    // (b) kubectl apply of the same pods as one List, when kubectl is available.
    const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
    let kubectlNote = '';
    if (kubectl.status === 0) {
      await namespace(core, 'bench-kubectl');
      const kubeletB = await fakeKubelet(kc, core, 'bench-kubectl');
      const anchorB = await core.createNamespacedConfigMap({ namespace: 'bench-kubectl', body: { metadata: { name: 'anchor' } } });
      const list = {
        apiVersion: 'v1',
        kind: 'List',
        items: pods.map((p) => ({
          ...p,
          metadata: {
            ...p.metadata,
            namespace: 'bench-kubectl',
            ownerReferences: [{ ...p.metadata!.ownerReferences![0], uid: anchorB.metadata!.uid! }],
          },
        })),
      };
      const file = path.join(dir, 'pods.json');
      fs.writeFileSync(file, JSON.stringify(list));
      const t2 = performance.now();
      execFileSync('kubectl', ['--kubeconfig', cluster.kubeconfig, 'apply', '-f', file], { stdio: 'ignore' });
      const appliedMs = performance.now() - t2;
      await waitAll(
        pods.map((p) => p.metadata!.name!),
        kubeletB,
      );
      const kMs = performance.now() - t2;
      kubeletB.stop();
      rows.push({
        variant: `(b) kubectl apply -f (applied in ${Math.round(appliedMs)} ms), until all ended`,
        ms: kMs,
        perStep: (kMs / steps).toFixed(2),
      });
    } else {
      kubectlNote = 'kubectl is not on PATH on this machine (and not built by scripts/k8s/provision.sh), so (b) was not run.';
    }

    const per = (n: number) => (n / steps).toFixed(2);
    const table = [
      '| variant | total ms | ms per step |',
      '|---|---|---|',
      ...rows.map((r) => `| ${r.variant} | ${Math.round(r.ms)} | ${r.perStep} |`),
    ].join('\n');
    const callTable = [
      '| per step | get | create | delete | watch | watch events | log | list |',
      '|---|---|---|---|---|---|---|---|',
      `| Causeway runtime | ${per(calls.get)} | ${per(calls.create)} | ${per(calls.delete)} | ${per(calls.watch)} | ${per(calls.watchEvents)} | ${per(calls.log)} | ${per(calls.list)} |`,
    ].join('\n');
    const cpus = os.cpus();
    const section = `${MARK_START}
## Kubernetes runtime: API calls per step and ${steps} step pods (bench/k8s-api)

${steps} task steps of one build started at once through \`KubernetesRuntime.runStep\` against the real
control plane of the k8s tests (kube-apiserver ${'v1.34.4'}, controller-manager, scheduler, 2 KWOK nodes),
all followed through the runtime's one pod informer (one list, one watch) until a fake kubelet (one watch on the namespace) ends its task container;
pods without outputs are then deleted. The baselines create the same pod objects and wait for the same
fake kubelet. Target: one list and one watch connection in all, not one per step.

Machine: ${cpus.length} (${cpus[0]?.model.trim()}) CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}; run ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}, load average at start ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}.

${table}

${callTable}

List calls: ${calls.list}, watch connections: ${calls.watch} (target one each, the pod informer's: ${calls.list <= 1 && calls.watch <= 1 ? 'met' : 'not met'}). The anchor ConfigMap and token Secret cost 3 calls once per build
(included above). ${kubectlNote}
${MARK_END}`;
    process.stdout.write(`${table}\n\n${callTable}\n\nlist calls: ${calls.list}, watch connections: ${calls.watch}\n`);
    let text = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '# Benchmarks\n';
    if (text.includes(MARK_START)) text = text.replace(new RegExp(`${MARK_START}[\\s\\S]*?${MARK_END}`), section);
    else text = `${text.trimEnd()}\n\n${section}\n`;
    fs.writeFileSync(out, text);
    log(`wrote ${out}`);
  } finally {
    await stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
