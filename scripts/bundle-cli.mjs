// Bundles the client commands (dist/cli/client.js and what it loads) into one file,
// dist/cli/client.bundle.js, that bin/causeway runs with V8's code cache; run by `npm run build`
// after tsc. Its manifest (dist/cli/client.bundle.json) names the bundle's hash (the code
// cache's key) and the dist/ files it holds, so bin/causeway falls back to dist/cli/client.js
// when tsc has rewritten any of them since. Then writes the bundle's V8 startup snapshot
// (dist/cli/client.snapshot.blob, cli/snapshot.ts) and the shell lines bin/causeway sources
// to start Node from it (dist/cli/client.snapshot.sh).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const outfile = path.join(dist, 'cli', 'client.bundle.js');

// Every bundled module sees __dirname, __filename and require.resolve of a relative path as in
// its own file, not as the bundle's: dist/ code finds package.json, resources/ and its siblings by them.
const DIR = '__causeway_module_dir__';
const keepDirname = {
  name: 'keep-dirname',
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, (args) => {
      const text = fs.readFileSync(args.path, 'utf8');
      if (!/__dirname|__filename|require\.resolve\(/.test(text)) return undefined;
      const rel = JSON.stringify(path.relative(path.dirname(outfile), path.dirname(args.path)));
      const contents = text
        .replace(
          /require\.resolve\((['"])(\.{1,2}\/[^'"]*)\1\)/g,
          (_, q, p) => `require.resolve(require("node:path").join(${DIR}, ${q}${p}${q}))`,
        )
        .replace(/\b__filename\b/g, `require("node:path").join(${DIR}, ${JSON.stringify(path.basename(args.path))})`)
        .replace(/\b__dirname\b/g, DIR)
        .replaceAll(DIR, `require("node:path").join(__dirname, ${rel})`);
      return { contents, loader: 'js', resolveDir: path.dirname(args.path) };
    });
  },
};

// Temporal's proto definitions, less what no client uses (the Cloud Ops API and the worker
// core's coresdk: nothing in @temporalio/client or common names them), as one JSON.parse
// rather than a 1.4 MB object literal: protobufjs building its reflection of these at start-up
// is the largest cost left of a client command's (BENCHMARKS.md, "One-step build latency").
const protoForClients = {
  name: 'proto-for-clients',
  setup(build) {
    build.onLoad({ filter: /@temporalio[\\/]proto[\\/]protos[\\/]json-module\.js$/ }, (args) => {
      const text = fs.readFileSync(args.path, 'utf8');
      const start = text.indexOf('.addJSON(') + '.addJSON('.length;
      const end = text.lastIndexOf('});') + 1;
      const json = JSON.parse(text.slice(start, end));
      if (!json.coresdk || !json.temporal?.nested?.api?.nested?.cloud)
        throw new Error(
          `${args.path}: no coresdk or temporal.api.cloud to leave out; update scripts/bundle-cli.mjs for this @temporalio/proto`,
        );
      delete json.coresdk;
      delete json.temporal.nested.api.nested.cloud;
      const contents = `${text.slice(0, start)}JSON.parse(${JSON.stringify(JSON.stringify(json))})${text.slice(end)}`;
      return { contents, loader: 'js', resolveDir: path.dirname(args.path) };
    });
  },
};

// cli/main (every other command) loads from dist/ as it is, beside the bundle.
const mainOutside = {
  name: 'main-outside',
  setup(build) {
    build.onResolve({ filter: /^\.\/main$/ }, (args) =>
      args.importer === path.join(dist, 'cli', 'client.js') ? { path: './main', external: true } : undefined,
    );
  },
};

const result = await esbuild.build({
  entryPoints: [path.join(dist, 'cli', 'client.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  // Whitespace and comments only (names stay, for stack traces): a smaller source is a smaller snapshot, ~10 CPU-ms less per run.
  minifyWhitespace: true,
  target: 'node20',
  // pino runs its transports in worker threads from files of its own; the rest is never loaded by a client command.
  external: ['pino', 'pino-pretty', 'thread-stream', '@temporalio/worker', '@temporalio/core-bridge', '@kubernetes/client-node'],
  plugins: [protoForClients, keepDirname, mainOutside],
  metafile: true,
  logLevel: 'warning',
});

// One non-ASCII character (a few remain in comments and regular expressions, which esbuild
// prints as they are) makes V8 hold the whole 5 MB source two bytes a character, in the
// snapshot too: escaped, they mean the same in a string, a regular expression or a comment.
fs.writeFileSync(
  outfile,
  fs.readFileSync(outfile, 'utf8').replace(/[^\0-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
);
const hash = createHash('sha256').update(fs.readFileSync(outfile)).digest('hex');
const inputs = Object.keys(result.metafile.inputs)
  .map((p) => path.resolve(root, p))
  .filter((p) => p.startsWith(dist + path.sep))
  .map((p) => path.relative(dist, p));
// bin/causeway runs only these commands from the bundle; anything else loads dist/cli/main.js.
const { CLIENT_COMMANDS } = createRequire(import.meta.url)(path.join(dist, 'cli', 'client-commands.js'));
const commands = Object.values(CLIENT_COMMANDS).flatMap(([names]) => names);
fs.writeFileSync(path.join(dist, 'cli', 'client.bundle.json'), `${JSON.stringify({ sha256: hash, commands, inputs })}\n`);

// The snapshot's entry: the bundle as Node would wrap it, but with a `require` that the
// snapshot's main points at the blob's directory (while Node writes it, `require` loads only
// Node's own modules), warmed, and with the main a process started from it runs.
const entry = path.join(dist, 'cli', 'client.snapshot.js');
const blob = path.join(dist, 'cli', 'client.snapshot.blob');
fs.writeFileSync(
  entry,
  `'use strict';
let load = require;
const bundle = { exports: {} };
(function (exports, require, module, __filename, __dirname) {
${fs.readFileSync(outfile, 'utf8')}
})(bundle.exports, Object.assign((id) => load(id), { resolve: (id, options) => load.resolve(id, options) }), bundle, ${JSON.stringify(outfile)}, ${JSON.stringify(path.dirname(outfile))});
bundle.exports.warmSnapshot();
require('node:v8').startupSnapshot.setDeserializeMainFunction(() => bundle.exports.fromSnapshot(bundle.exports.main, (r) => (load = r)));
`,
);
// Node warns of each module of its own that the entry loads and it does not vouch for in a snapshot
// (child_process, module, …): there are none today (cli/snapshot.ts), and a warning here says one came in.
// Without a snapshot the CLI still runs, from the code cache: a Node that cannot write one only warns.
const sh = path.join(dist, 'cli', 'client.snapshot.sh');
let snapshot = true;
try {
  execFileSync(process.execPath, ['--snapshot-blob', `${blob}.tmp`, '--build-snapshot', entry], { stdio: 'inherit' });
  fs.renameSync(`${blob}.tmp`, blob);
} catch (err) {
  process.stderr.write(`warning: no startup snapshot of the CLI (${err.message}); client commands start from the code cache\n`);
  for (const f of [sh, blob, `${blob}.tmp`]) fs.rmSync(f, { force: true });
  snapshot = false;
} finally {
  fs.rmSync(entry);
}

// Sourced by bin/causeway's first line with $s set to its own path: a client command (not its
// --help) starts Node from the snapshot when that is the Node that wrote it, unchanged since,
// and no NODE_OPTIONS would make V8 refuse the snapshot; anything else returns to bin/causeway.
const node = fs.realpathSync(process.execPath);
if (snapshot)
  fs.writeFileSync(
    sh,
    `# Written by scripts/bundle-cli.mjs for bin/causeway (docs/cli.md, "Start-up").
cw_blob="\${s%/bin/*}/dist/cli/client.snapshot.blob"
cw_command=
for cw_arg; do
  case $cw_arg in
    -h|--help) cw_command=-; break ;;
    -*) ;;
    *) [ -n "$cw_command" ] || cw_command=$cw_arg ;;
  esac
done
case " ${commands.join(' ')} " in
  *" $cw_command "*)
    if [ -z "$NODE_OPTIONS" ] && [ -f "$cw_blob" ] && [ "$(command -v node)" -ef ${JSON.stringify(node)} ] && [ ! ${JSON.stringify(node)} -nt "$cw_blob" ]; then
      # Read by the CLI when a TLS connection needs it, not by Node at start (cli/extra-ca.ts).
      if [ -n "$NODE_EXTRA_CA_CERTS" ]; then
        CAUSEWAY_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS
        export CAUSEWAY_EXTRA_CA_CERTS
        unset NODE_EXTRA_CA_CERTS
      fi
      exec node --snapshot-blob "$cw_blob" "$@"
    fi ;;
esac
`,
  );
