// CLI start-up: wall time and modules loaded per command, against `node -e 0`.
// Prints a table and writes its section of BENCHMARKS.md.
//   npm run bench:cli-startup -- [--runs 15] [--out BENCHMARKS.md]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeSection } from './report';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'causeway');
const MARKERS = { start: '## CLI start-up (bench/cli-startup)', end: '<!-- end cli-startup -->' };

// Preloaded into each run: writes how many modules it loaded and whether the worker SDK was among them.
const COUNTER = `process.on('exit', () => { const k = Object.keys(require.cache); require('fs').writeFileSync(process.env.CAUSEWAY_BENCH_MODULES, JSON.stringify({ modules: k.length, worker: k.some((f) => f.includes('@temporalio/worker')) })); });`;

const CASES: [label: string, args: string[], status?: number][] = [
  ['node -e 0', ['-e', '0']],
  ['causeway --version', [BIN, '--version']],
  ['causeway compile examples/hello.yml', [BIN, 'compile', path.join(ROOT, 'examples', 'hello.yml')]],
  ['causeway status --help (client commands)', [BIN, 'status', '--help']],
  ['causeway run --help', [BIN, 'run', '--help']],
  ['causeway --help (every command)', [BIN, '--help']],
  // Exits at reading the plan, after loading all that `run` loads.
  ['causeway run of a missing plan (the run command’s modules)', [BIN, 'run', path.join(os.tmpdir(), 'causeway-no-such-plan.yml')], 2],
  [
    'the same from dist/ without the bundle',
    [path.join(ROOT, 'dist', 'cli', 'main.js'), 'run', path.join(os.tmpdir(), 'causeway-no-such-plan.yml')],
    2,
  ],
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main(): void {
  const args = process.argv.slice(2);
  const runs = Number(args[args.indexOf('--runs') + 1] ?? 15) || 15;
  const out = args.includes('--out') ? args[args.indexOf('--out') + 1] : path.join(ROOT, 'BENCHMARKS.md');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-startup-'));
  const counter = path.join(tmp, 'counter.js');
  fs.writeFileSync(counter, COUNTER);
  const rows: string[][] = [];
  let floor = 0;
  try {
    for (const [label, caseArgs, status = 0] of CASES) {
      const times: number[] = [];
      const modulesFile = path.join(tmp, 'modules.json');
      for (let i = 0; i < runs; i++) {
        const t0 = process.hrtime.bigint();
        const r = spawnSync(process.execPath, ['-r', counter, ...caseArgs], {
          env: { ...process.env, CAUSEWAY_BENCH_MODULES: modulesFile },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (r.status !== status) throw new Error(`${label} exited ${r.status}: ${r.stderr.toString()}`);
      }
      const loaded = JSON.parse(fs.readFileSync(modulesFile, 'utf8')) as { modules: number; worker: boolean };
      const ms = median(times);
      if (label === 'node -e 0') floor = ms;
      rows.push([label, ms.toFixed(0), `${(ms / floor).toFixed(2)}×`, String(loaded.modules - 1), loaded.worker ? 'yes' : 'no']);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const header = ['command', 'median ms', '× node -e 0', 'modules', '@temporalio/worker'];
  const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  const text = `${MARKERS.start}

Median of ${runs} runs each, ${new Date().toISOString().slice(0, 16)}Z, ${os.cpus().length} CPUs, Node ${process.version}, load ${os.loadavg()[0].toFixed(1)}.
Goal (issue 16): \`causeway --version\` ≤ 2× \`node -e 0\`; a client command never loads the worker SDK.
Before lazy loading (commit c63a016) every command, \`--version\` included, loaded 986 modules
with @temporalio/worker, rxjs and the native core bridge: 0.57 s against 0.067 s for \`node -e 0\`
(8.3×, issue 16). \`cli/main.ts\` loads only the named command's definition (\`cli/specs/\`: its flags and
help, commander only), and the definition loads its implementation (\`cli/commands/\`) only when the
command runs: \`--help\` of a command loads what it describes. Before that split (commit 1ff6e33)
\`run --help\` loaded 540 modules, \`status --help\` 453 and \`--help\` the worker SDK (1003).
A client command (\`run\`, \`compile\`, \`status\`, …) runs from one bundle compiled from V8's code cache
(docs/cli.md, "Start-up"), which this table counts as one module; \`--version\` and \`--help\` load dist/.

${table}

Rerun: \`npm run bench:cli-startup\`.
${MARKERS.end}`;
  console.log(table);
  writeSection(out, MARKERS, text);
}

main();
