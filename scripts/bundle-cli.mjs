// Bundles the client commands (dist/cli/client.js and what it loads) into one file,
// dist/cli/client.bundle.js, that bin/causeway runs with V8's code cache; run by `npm run build`
// after tsc. Its manifest (dist/cli/client.bundle.json) names the bundle's hash (the code
// cache's key) and the dist/ files it holds, so bin/causeway falls back to dist/cli/client.js
// when tsc has rewritten any of them since.
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
  target: 'node20',
  // pino runs its transports in worker threads from files of its own; the rest is never loaded by a client command.
  external: ['pino', 'pino-pretty', 'thread-stream', '@temporalio/worker', '@temporalio/core-bridge', '@kubernetes/client-node'],
  plugins: [protoForClients, keepDirname, mainOutside],
  metafile: true,
  logLevel: 'warning',
});

const hash = createHash('sha256').update(fs.readFileSync(outfile)).digest('hex');
const inputs = Object.keys(result.metafile.inputs)
  .map((p) => path.resolve(root, p))
  .filter((p) => p.startsWith(dist + path.sep))
  .map((p) => path.relative(dist, p));
// bin/causeway runs only these commands from the bundle; anything else loads dist/cli/main.js.
const { CLIENT_COMMANDS } = createRequire(import.meta.url)(path.join(dist, 'cli', 'client-commands.js'));
const commands = Object.values(CLIENT_COMMANDS).flatMap(([names]) => names);
fs.writeFileSync(path.join(dist, 'cli', 'client.bundle.json'), `${JSON.stringify({ sha256: hash, commands, inputs })}\n`);
