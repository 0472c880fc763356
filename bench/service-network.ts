// What the local runtime's service network costs (docs/networking.md), apart from Temporal and
// the services themselves: a build's first service (its hub namespace and bridge, then its own
// namespace and veth), each further service, the /etc/hosts view a step or service starts in,
// and removing a build's network; against the former design's one shared namespace per build.
// Prints a table and writes its section of BENCHMARKS.md.
//
//   npm run bench:service-network -- [--repeat 15] [--out BENCHMARKS.md]
//
// Needs root on Linux (real namespaces); leaves none behind.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { repoRoot } from '../cli/dev/stack';
import { attachService, inNetwork, removeNetwork, serviceScope, systemTool, writeHosts } from '../activities/runtime/local/network';
import { runCommand } from '../activities/runtime/local/spawner';
import type { ServiceAddress } from '../common/services';
import { loadavg, writeSection } from './report';

const MARK_START = '<!-- bench:service-network:start -->';
const MARK_END = '<!-- bench:service-network:end -->';

function parseArgs(argv: string[]): { repeat: number; out: string } {
  const opts = { repeat: 15, out: path.join(repoRoot(__dirname), 'BENCHMARKS.md') };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--repeat') opts.repeat = Math.max(1, Number.parseInt(value, 10));
    else if (flag === '--out') opts.out = path.resolve(value);
    else throw new Error(`unknown flag ${flag}; flags: --repeat N, --out FILE`);
  }
  return opts;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function run(file: string, args: string[]): Promise<void> {
  const r = await runCommand(file, args);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')}: exit ${r.code ?? r.signal}: ${r.stderr.trim()}`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

async function main(): Promise<void> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0)
    throw new Error('bench:service-network needs root on Linux (it makes real namespaces)');
  const opts = parseArgs(process.argv.slice(2));
  // The process helper does not keep node alive by itself: the activities waiting on it do.
  const alive = setInterval(() => undefined, 1000);
  const rows: Record<string, number[]> = { first: [], another: [], stepPlain: [], stepNetns: [], stepHosts: [], remove: [], before: [] };
  const hostsFile = path.join('/tmp', `causeway-bench-hosts-${process.pid}`);
  const ip = systemTool('ip');
  for (let i = 0; i < opts.repeat; i++) {
    const buildId = `bench-${randomUUID()}`;
    const ref = (name: string) => ({ buildId, runId: 'run', scopeStepId: 'plan.0', runKey: '1', name });
    const scope: Record<string, ServiceAddress> = {
      a: { name: 'a', host: '127.1.1.1', ports: {} },
      b: { name: 'b', host: '127.1.1.2', ports: {} },
    };
    try {
      let seen: Record<string, ServiceAddress> = {};
      let hub: string | undefined;
      rows.first.push(
        await timed(async () => {
          seen = await serviceScope(ref('a'), scope, ['a', 'b']);
          hub = (await attachService(ref('a'), seen.a.host)).network;
        }),
      );
      rows.another.push(await timed(() => serviceScope(ref('b'), scope, ['a', 'b']).then((s) => attachService(ref('b'), s.b.host))));
      await writeHosts(hostsFile, seen);
      rows.stepPlain.push(await timed(() => run('/bin/true', [])));
      const [netnsCmd, ...netnsArgs] = inNetwork(hub, ['/bin/true']);
      rows.stepNetns.push(await timed(() => run(netnsCmd, netnsArgs)));
      const [hostsCmd, ...hostsArgs] = inNetwork(hub, ['/bin/true'], hostsFile);
      rows.stepHosts.push(await timed(() => run(hostsCmd, hostsArgs)));
    } finally {
      rows.remove.push(await timed(() => removeNetwork(buildId)));
    }
    const old = `cw-bench-${process.pid}`;
    rows.before.push(await timed(() => run('/bin/sh', ['-c', '"$0" netns add "$1" && "$0" -n "$1" link set lo up', ip, old])));
    await run(ip, ['netns', 'del', old]);
  }
  await runCommand('/bin/rm', ['-f', hostsFile]);
  clearInterval(alive);

  const ms = (v: number[]) => median(v).toFixed(1);
  const table = [
    '| what (median, ms) | |',
    '|---|---:|',
    `| a build's first service: address, hub namespace with its bridge, own namespace and veth | ${ms(rows.first)} |`,
    `| each further service: address, own namespace and veth | ${ms(rows.another)} |`,
    `| before this design: a build's one shared namespace (\`ip netns add\`, \`lo\` up) | ${ms(rows.before)} |`,
    `| a process start (\`true\`) through the process helper | ${ms(rows.stepPlain)} |`,
    `| the same in the hub (\`nsenter --net\`) | ${ms(rows.stepNetns)} |`,
    `| the same with the /etc/hosts view (\`nsenter\`, \`unshare --mount\`, \`mount --bind\`) | ${ms(rows.stepHosts)} |`,
    `| removing a build's network with two services (processes killed, namespaces deleted) | ${ms(rows.remove)} |`,
  ];
  const text = [
    MARK_START,
    "## Services' networks on the local runtime",
    '',
    `\`npm run bench:service-network -- --repeat ${opts.repeat}\`, Node ${process.version}, load ${loadavg()}, ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}.`,
    'Each row is the median of the repeats; see docs/networking.md for the design. A service pays its network while its files and',
    'config are prepared (they are made at once); a step with services pays the hosts view at its start. The removal runs at the',
    "service's stop and the build's end, after the steps.",
    '',
    ...table,
    MARK_END,
  ].join('\n');
  console.log(text);
  writeSection(opts.out, { start: MARK_START, end: MARK_END }, text);
  console.log(`\nwrote ${opts.out}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
