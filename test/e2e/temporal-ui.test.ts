// The Temporal UI as a user sees a failed build, read by a real browser (headless Chromium from
// Debian, installed by .ci/run): the failed step is a failed activity in the History tab, its
// failure (decoded through the codec server, as `causeway dev up` wires it) names the exit code
// and the last log lines, and the step tree is on the User Metadata tab. Screenshots are kept
// in a temp dir named in the test's output, for a person to look at.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { awaitBuild, startBuild } from '../../common/build-client';
import { connectTemporalClient } from '../../common/temporal-connection';
import { startStackOnFreePorts, stopStack, type StackInfo } from '../../cli/dev/stack';
import { compilePlan } from '../../schemas';
import { requireBuiltCli } from './cli-runner';

const CHROMIUM = '/usr/bin/chromium';
/** Virtual time the UI gets to fetch and render (its requests are real; its timers run fast). */
const RENDER_BUDGET_MS = 15_000;

const PLAN = `
plan:
- task: compile
  config: {platform: linux, run: {path: sh, args: [-c, 'echo compiled']}}
- in_parallel:
  - task: unit
    config: {platform: linux, run: {path: sh, args: [-c, 'echo running tests; echo "FAIL: TestParse wanted 3" >&2; exit 3']}}
  - task: lint
    config: {platform: linux, run: {path: sh, args: [-c, 'echo lint ok']}}
`;

let home: string;
let shots: string;
let stack: StackInfo;
let client: Client;
let connection: Connection;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`);
  requireBuiltCli();
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-ui-'));
  shots = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-ui-screenshots-'));
  // A whole dev stack (worker and codec server too), as a user's `causeway dev up`.
  stack = await startStackOnFreePorts({ home, persistent: false, startWorker: true, log: () => undefined });
  ({ client, connection } = await connectTemporalClient({ address: stack.temporal.address, home }));
}, 180_000);

afterAll(async () => {
  await connection?.close();
  if (home) {
    await stopStack(home);
    fs.rmSync(home, { recursive: true, force: true });
  }
});

/** The page's DOM after the UI rendered it, as text, and a screenshot of it saved as `name`.png. */
function browse(url: string, name: string): string {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${path.join(home, 'chromium')}`,
    '--window-size=1400,1000',
    `--virtual-time-budget=${RENDER_BUDGET_MS}`,
  ];
  const run = (extra: string[]) =>
    execFileSync(CHROMIUM, [...args, ...extra, url], { timeout: 90_000, maxBuffer: 32 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  run([`--screenshot=${path.join(shots, `${name}.png`)}`]);
  // On a loaded machine a dump can come before the app's modules ran (an empty <div id="svelte">,
  // while the screenshot shows the page): dump again rather than read an unrendered page.
  let dom = '';
  for (let tries = 0; tries < 3 && !rendered(dom); tries++) dom = run(['--dump-dom']).toString('utf8');
  fs.writeFileSync(path.join(shots, `${name}.html`), dom);
  // The UI renders user metadata (Markdown) in iframes whose source carries it: read it from there.
  const framed = [...dom.matchAll(/<iframe[^>]*\ssrc="\/render\?content=([^"&]*)/g)].map((m) => decodeURIComponent(unescape(m[1])));
  const text = unescape(dom.replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/g, ' ').replace(/<[^>]+>/g, ' '));
  return [text, ...framed].join(' ').replace(/\s+/g, ' ');
}

/**
 * Whether the UI's app put anything in its root element (its bootstrap script is all there is
 * before), and not its error page: under load a fetch of the UI's own backend can fail, and the
 * page says "Uh oh ... Try a refresh" (seen in a CI run at load 14), as a user would refresh.
 */
function rendered(dom: string): boolean {
  const root = /<div id="svelte">([\s\S]*)<\/div>/.exec(dom)?.[1] ?? '';
  return root.replace(/<script[^>]*>[\s\S]*?<\/script>/g, '').trim() !== '' && !/Uh oh\. There(&#39;|')s an error/.test(root);
}

/** The HTML entities the UI's DOM dump uses. */
function unescape(html: string): string {
  return html
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

test('a failed step is a failed activity naming its exit code and log; the step tree is on User Metadata', async () => {
  const plan = compilePlan({ text: PLAN, file: 'ui.yml' });
  const handle = await startBuild(client, { plan, taskQueue: 'causeway' });
  expect((await awaitBuild(handle)).status).toBe('failed');
  const history = await handle.fetchHistory();
  const failedEvent = history.events?.find((e) => e.activityTaskFailedEventAttributes);
  expect(failedEvent).toBeDefined();

  const run = `${stack.temporal.uiUrl}/namespaces/default/workflows/${handle.workflowId}/${handle.firstExecutionRunId}`;
  process.stderr.write(`[temporal-ui test] screenshots of ${run} in ${shots}\n`);

  // History (the default tab): the timeline names each step's activity; the failed one is failed.
  const historyPage = browse(`${run}/history`, 'history');
  expect(historyPage).toContain('task unit · plan.1.in_parallel.0');
  expect(historyPage).toContain('Activity Task Failed');

  // The failed event itself, its failure decoded by the codec server.
  const eventPage = browse(`${run}/history/events/${String(failedEvent?.eventId)}`, 'failed-activity');
  expect(eventPage).toContain('RETRY_STATE_NON_RETRYABLE_FAILURE');
  expect(eventPage).toMatch(/task unit \(plan\. ?1 ?\.in_parallel\. ?0 ?\) failed with exit code 3/);
  expect(eventPage).toContain('FAIL: TestParse wanted 3');

  // User Metadata: the static details say where things are; Current Details is the step tree;
  // Events with Metadata lists the failed activity as Failed.
  const metadataPage = browse(`${run}/user-metadata`, 'user-metadata');
  expect(metadataPage).toContain('ui (ui.yml)');
  expect(metadataPage).toContain('**Step tree**');
  expect(metadataPage).toContain('- ✘ **unit** `plan.1.in_parallel.0` failed (exit 3)');
  expect(metadataPage).toContain('- ✔ **lint** `plan.1.in_parallel.1` succeeded (exit 0)');
  expect(metadataPage).toMatch(/task unit · plan\.1\.in_parallel\.0 Failed/);
}, 600_000);
