// `causeway dev up|down|status`: the embedded dev stack a new user starts first (cli/specs/dev.ts defines the flags).
import { z } from 'zod';
import { causewayHome } from '../../common/config';
import { devContainerdDir, devContainerdStatus, readContainerd, startDevContainerd, stopContainerd } from './containerd';
import { devKubernetesStatus, readDevKubernetes, startDevKubernetes, stopDevKubernetes } from './kubernetes';
import { repoRoot, stackStatus, startStack, stopStack } from './stack';
import { stateFile, type StackState } from './state';

const Port = z.coerce.number().int().min(1).max(65535);

const UpFlags = z.object({
  worker: z.boolean(),
  runtime: z.enum(['local', 'containerd', 'kubernetes']),
  temporalPort: Port.optional(),
  uiPort: Port.optional(),
  natsPort: Port.optional(),
  codecPort: Port.optional(),
});

function parseFlags<T>(schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  // Name the flag as the user typed it (--nats-port), not the camelCase key.
  const flag = (key: PropertyKey | undefined): string => `--${String(key).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  throw new Error(parsed.error.issues.map((i) => `${flag(i.path[0])}: ${i.message}`).join('\n'));
}

/** Runs an action, turning a thrown error into a message on stderr and exit code 1. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (err) {
      process.stderr.write(`causeway: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((row) => row[col]?.length ?? 0))) ?? [];
  return rows
    .map(
      (row) =>
        '  ' +
        row
          .map((cell, col) => cell.padEnd(widths[col] ?? 0))
          .join('   ')
          .trimEnd(),
    )
    .join('\n');
}

function describe(state: StackState): string {
  return table([
    ['Temporal', state.temporal.address, `pid ${state.temporal.pid}`],
    ['Temporal UI', state.temporal.uiUrl, ''],
    ['NATS', state.nats.url, `pid ${state.nats.pid}`],
    ...state.workers.map((w) => [w.name, '', `pid ${w.pid}`]),
    ...(state.codecServer ? [['codec server', state.codecServer.url, `pid ${state.codecServer.pid}`]] : []),
    ['data', state.temporal.dbFile ?? '(in memory)', ''],
    ['logs', state.logDir, ''],
  ]);
}

/** `causeway dev up`: cli/specs/dev.ts defines its flags. */
export const devUp = action(async (raw: unknown) => {
  const flags = parseFlags(UpFlags, raw);
  const home = causewayHome();
  const info = await startStack({
    home,
    persistent: true,
    startWorker: flags.worker && flags.runtime === 'local',
    // The containerd and kubernetes workers start after the stack, and the UI decrypts their builds' payloads too.
    codecServer: true,
    ports: { temporal: flags.temporalPort, ui: flags.uiPort, nats: flags.natsPort, codec: flags.codecPort },
    log: (line) => process.stdout.write(`  ${line}\n`),
  });
  process.stdout.write(`${info.reused ? 'Dev stack was already running' : 'Dev stack is up'} (${home}):\n${describe(info)}\n`);
  if (flags.runtime === 'kubernetes') {
    const endpoints = { temporalAddress: info.temporal.address, natsUrl: info.nats.url };
    const k8s = await startDevKubernetes(home, endpoints, (line) => process.stdout.write(`  ${line}\n`));
    process.stdout.write(
      `${k8s.reused ? 'Kubernetes was already running' : 'Kubernetes is up'}:\n${table([
        ['kube-apiserver', k8s.server, `KUBECONFIG=${k8s.kubeconfig}`],
        ['registry', k8s.registry, ''],
        ['node', k8s.node, ''],
        [k8s.worker.name, '', `pid ${k8s.worker.pid}`],
      ])}\n`,
    );
  }
  if (flags.runtime === 'containerd') {
    const endpoints = { temporalAddress: info.temporal.address, natsUrl: info.nats.url };
    const c = await startDevContainerd(home, endpoints, repoRoot(), (line) => process.stdout.write(`  ${line}\n`), flags.worker);
    process.stdout.write(
      `${c.reused ? 'containerd was already running' : 'containerd is up'}:\n${table([
        ['containerd', c.socket, ''],
        ['registry', c.registry, `mirrors ${c.hostsDir}`],
      ])}\n`,
    );
  }
  process.stdout.write('Check it with `causeway dev status`; stop it with `causeway dev down`.\n');
});

/** `causeway dev down`: cli/specs/dev.ts defines its flags. */
export const devDown = action(async () => {
  const home = causewayHome();
  const k8s = await stopDevKubernetes(home);
  if (k8s) process.stdout.write(`Stopped ${k8s.worker.name} (pid ${k8s.worker.pid}) and the Kubernetes cluster in ${k8s.dir}.\n`);
  const containerd = readContainerd(devContainerdDir(home));
  if (containerd) {
    await stopContainerd(containerd.dir);
    const worker = containerd.processes.some((p) => p.name === 'worker') ? 'the containerd worker, ' : '';
    process.stdout.write(`Stopped ${worker}containerd and its registry in ${containerd.dir}.\n`);
  }
  const stopped = await stopStack(home);
  if (!stopped) {
    process.stdout.write(`No dev stack is recorded in ${home}; nothing to stop.\n`);
    return;
  }
  const names = [
    ...stopped.workers.map((w) => `${w.name} (pid ${w.pid})`),
    `NATS (pid ${stopped.nats.pid})`,
    `Temporal (pid ${stopped.temporal.pid})`,
  ];
  process.stdout.write(`Stopped ${names.join(', ')}.\n`);
});

/** `causeway dev status`: cli/specs/dev.ts defines its flags. */
export const devStatus = action(async () => {
  const home = causewayHome();
  const status = await stackStatus(home);
  if (!status.state) {
    process.stderr.write(`causeway: no dev stack is running in ${home}; start one with \`causeway dev up\`\n`);
    process.exitCode = 1;
    return;
  }
  const state = (c: { alive: boolean; reachable: boolean }): string => (!c.alive ? 'dead' : c.reachable ? 'alive' : 'alive, not answering');
  const k8s = readDevKubernetes(home);
  const containerd = readContainerd(devContainerdDir(home));
  const components = [
    ...status.components,
    ...(k8s ? await devKubernetesStatus(k8s) : []),
    ...(containerd ? await devContainerdStatus(containerd) : []),
  ];
  const rows = [['COMPONENT', 'PID', 'STATE', 'ADDRESS'], ...components.map((c) => [c.component, String(c.pid), state(c), c.address])];
  process.stdout.write(`${table(rows)}\n  UI: ${status.state.temporal.uiUrl}\n  logs: ${status.state.logDir}\n`);
  if (!status.running || components.some((c) => !c.alive || !c.reachable)) {
    process.stderr.write(
      `causeway: the dev stack in ${home} is not fully running; see the logs, then \`causeway dev down && causeway dev up\` (state: ${stateFile(home)})\n`,
    );
    process.exitCode = 1;
  }
});
