// The payload codec's cost (AES-256-GCM, common/codec.ts): the sizes of a build's payloads,
// encode/decode throughput by payload size, and the end-to-end time of a small build with and
// without the codec (two workers and clients on one dev stack: one home has codec keys, the
// other does not). Prints a table and writes its section of BENCHMARKS.md.
//   npm run bench:codec -- [--runs 7] [--steps 5] [--out BENCHMARKS.md]
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import pino from 'pino';
import type { RunTaskRequest } from '../activities/types';
import { repoRoot, startStackOnFreePorts, stopStack } from '../cli/dev/stack';
import { awaitBuild, startBuild } from '../common/build-client';
import { AesGcmPayloadCodec, causewayDataConverter, ensureCodecKeys, loadCodecKeys, CODEC_KEYS_FILE } from '../common/codec';
import { compilePlan, type CompiledPlan, type TaskStep } from '../schemas';
import { bundleBuildWorkflows } from '../workers/bundle';
import { startLocalWorker, type RunningWorker } from '../workers/local';
import { loadavg, machine, runMain, writeSection } from './report';

const MARKERS = { start: '<!-- bench:codec:start -->', end: '<!-- bench:codec:end -->' };
const SIZES = [1024, 16 * 1024, 256 * 1024, 2 * 1024 * 1024];

const progress = (msg: string) => process.stderr.write(`[bench codec] ${msg}\n`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const planYaml = (steps: number) =>
  `plan:\n${Array.from({ length: steps }, (_, i) => `- {task: s${i}, config: {platform: linux, params: {N: "${i}"}, run: {path: "true"}}}`).join('\n')}\n`;

/** Encodes and decodes `value`'s payload until ~0.3 s have passed; µs per operation and MB/s. */
async function throughput(
  codec: AesGcmPayloadCodec,
  payload: Payload,
): Promise<{ encodeUs: number; decodeUs: number; encMBs: number; decMBs: number }> {
  const bytes = payload.data?.length ?? 0;
  let [encoded] = await codec.encode([payload]);
  let n = 0;
  let t0 = performance.now();
  while (performance.now() - t0 < 300 || n < 5) {
    [encoded] = await codec.encode([payload]);
    n++;
  }
  const encMs = (performance.now() - t0) / n;
  let m = 0;
  t0 = performance.now();
  while (performance.now() - t0 < 300 || m < 5) {
    await codec.decode([encoded]);
    m++;
  }
  const decMs = (performance.now() - t0) / m;
  return { encodeUs: encMs * 1000, decodeUs: decMs * 1000, encMBs: bytes / 1e6 / (encMs / 1000), decMBs: bytes / 1e6 / (decMs / 1000) };
}

/** The payloads a build of `plan` makes, by kind, as the data converter sees them (before the codec). */
function buildPayloads(plan: CompiledPlan): [string, Payload][] {
  const step = plan.plan.steps[0] as TaskStep;
  const runTask: RunTaskRequest = {
    buildId: `build-${randomUUID()}`,
    runId: randomUUID(),
    plan: plan.name,
    step,
    runKey: '1',
    attempt: 1,
    artifacts: {},
  };
  const summary = {
    buildId: runTask.buildId,
    plan: plan.name,
    status: 'succeeded',
    startedAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    steps: plan.plan.steps.map((s) => ({ id: s.id, kind: s.kind, name: 'x', state: 'succeeded', attempts: 1 })),
  };
  return [
    ['workflow input (the plan)', defaultPayloadConverter.toPayload({ plan, uploads: [], downloads: [] })],
    ['runTask arguments', defaultPayloadConverter.toPayload(runTask)],
    ['runTask result', defaultPayloadConverter.toPayload({ exitCode: 0, outputs: {} })],
    ['build result (summary)', defaultPayloadConverter.toPayload(summary)],
  ];
}

async function main(): Promise<void> {
  const runs = Number(arg('--runs', '7')) || 7;
  const steps = Number(arg('--steps', '5')) || 5;
  const out = arg('--out', path.join(repoRoot(), 'BENCHMARKS.md'));
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-codec-'));
  const plain = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-codec-plain-'));
  const codec = new AesGcmPayloadCodec(ensureCodecKeys(path.join(home, CODEC_KEYS_FILE)));

  progress('codec throughput');
  const sizeRows: string[][] = [];
  for (const size of SIZES) {
    const t = await throughput(codec, defaultPayloadConverter.toPayload('x'.repeat(size - 2)));
    const overhead = ((await codec.encode([defaultPayloadConverter.toPayload('x'.repeat(size - 2))]))[0].data?.length ?? 0) - size;
    sizeRows.push([
      `${size / 1024} KiB`,
      t.encodeUs.toFixed(1),
      t.decodeUs.toFixed(1),
      t.encMBs.toFixed(0),
      t.decMBs.toFixed(0),
      `+${overhead}`,
    ]);
  }
  const plan = compilePlan({ text: planYaml(steps), file: 'codec-bench.yml' });
  const payloadRows: string[][] = [];
  for (const [what, payload] of buildPayloads(plan)) {
    const [encoded] = await codec.encode([payload]);
    const t = await throughput(codec, payload);
    payloadRows.push([
      what,
      String(payload.data?.length ?? 0),
      String(encoded.data?.length ?? 0),
      t.encodeUs.toFixed(1),
      t.decodeUs.toFixed(1),
    ]);
  }

  const workers: RunningWorker[] = [];
  const connections: Connection[] = [];
  let stackStarted = false;
  const e2e: { codec: number[]; clear: number[] } = { codec: [], clear: [] };
  let info: Record<string, string> | undefined;
  try {
    const stack = await startStackOnFreePorts({ home, persistent: false, startWorker: false, log: progress });
    stackStarted = true;
    info = machine(stack);
    // The second home has the stack's NATS credentials and no codec keys.
    fs.cpSync(path.join(home, 'nats-auth'), path.join(plain, 'nats-auth'), { recursive: true });
    const bundle = await bundleBuildWorkflows();
    const id = randomUUID().slice(0, 8);
    const clients: Record<'codec' | 'clear', { client: Client; taskQueue: string }> = {} as never;
    for (const [kind, dir] of [
      ['codec', home],
      ['clear', plain],
    ] as const) {
      const taskQueue = `bench-codec-${kind}-${id}`;
      workers.push(
        await startLocalWorker({
          temporalAddress: stack.temporal.address,
          namespace: 'default',
          natsUrl: stack.nats.url,
          home: dir,
          name: `bench-${kind}-${id}`,
          taskQueue,
          logMaxAgeSeconds: 3600,
          workflowBundle: bundle,
          log: pino({ level: 'error' }),
        }),
      );
      const connection = await Connection.connect({ address: stack.temporal.address });
      connections.push(connection);
      clients[kind] = { client: new Client({ connection, dataConverter: causewayDataConverter(loadCodecKeys({ home: dir })) }), taskQueue };
    }
    if (loadCodecKeys({ home: plain })) throw new Error(`${plain} has codec keys: the comparison would not be without the codec`);
    progress(`end to end: ${runs} builds of ${steps} steps each way, alternating (one warm-up each)`);
    for (let i = -1; i < runs; i++) {
      for (const kind of ['codec', 'clear'] as const) {
        const t0 = performance.now();
        const outcome = await awaitBuild(await startBuild(clients[kind].client, { plan, taskQueue: clients[kind].taskQueue }));
        if (outcome.status !== 'succeeded') throw new Error(`${kind} build ${outcome.status}: ${outcome.message}`);
        if (i >= 0) e2e[kind].push(performance.now() - t0);
      }
    }
  } finally {
    for (const w of workers) await w.shutdown();
    for (const c of connections) await c.close();
    if (stackStarted) await stopStack(home);
    fs.rmSync(plain, { recursive: true, force: true });
    fs.rmSync(home, { recursive: true, force: true });
  }
  const withCodec = median(e2e.codec);
  const without = median(e2e.clear);

  const table = (head: string[], rows: string[][]) => {
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
    return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
  };
  const text = [
    MARKERS.start,
    '## Payload codec cost (bench/codec)',
    '',
    'AES-256-GCM over every payload Temporal stores (common/codec.ts). Throughput: one payload encoded, then',
    "decoded, repeatedly for 0.3 s each, in this process. A build's payloads: a plan of",
    `${steps} trivial tasks, as the data converter makes them, before and after the codec. End to end: the same`,
    `build run ${runs} times through a worker and client with codec keys and ${runs} times through ones without`,
    '(one dev stack, alternating, one warm-up each), median wall-clock from start to result.',
    '',
    `Machine: ${info?.cpus} CPUs, ${info?.memory} memory, ${info?.os}; Node ${info?.node}; Temporal CLI ${info?.temporal};`,
    `run ${info?.date}, load average at start ${info?.load}, at end ${loadavg()}.`,
    '',
    table(['payload', 'encode µs', 'decode µs', 'encode MB/s', 'decode MB/s', 'bytes added'], sizeRows),
    '',
    table(["a build's payload", 'bytes', 'bytes encrypted', 'encode µs', 'decode µs'], payloadRows),
    '',
    table(
      [`build of ${steps} tasks`, 'median ms', 'runs ms'],
      [
        ['with the codec', withCodec.toFixed(0), e2e.codec.map((x) => x.toFixed(0)).join(' ')],
        ['without', without.toFixed(0), e2e.clear.map((x) => x.toFixed(0)).join(' ')],
      ],
    ),
    '',
    `Codec overhead end to end: ${(withCodec - without).toFixed(0)} ms (${(((withCodec - without) / without) * 100).toFixed(1)}%) per build;`,
    "the differences between runs on this shared machine are larger than the codec's own cost (the encode and",
    'decode times above, a few per step).',
    MARKERS.end,
  ].join('\n');
  process.stdout.write(`${text}\n`);
  writeSection(out, MARKERS, text);
}

runMain(main);
