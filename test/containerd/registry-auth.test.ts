// A registry that wants a login (Debian's docker-registry with htpasswd auth): the right
// username/password pulls, a wrong one errors the step with the registry's reason, and the
// password reaches neither the build's history nor its logs and events. A private image pulled
// once serves only steps whose login the registry accepted.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DummyStore } from '../../activities/creds/dummy';
import { readBuild } from '../../common/build-log';
import { registryStorage } from '../../cli/dev/containerd';
import { request, startProcess, stopProcesses, waitFor, type Started } from '../../cli/dev/k8s/procs';
import { freePort } from '../../cli/dev/stack';
import type { BuildRun, Harness } from '../workflows/harness';
import { ctr, startContainerdHarness, task } from './harness';

const USER = 'ci-bot';
const password = `pw-${randomUUID()}`;
const wrongPassword = `wrong-${randomUUID()}`;
let h: Harness;
let dir: string;
let registry: Started;
let image: string;

/** An htpasswd line with a bcrypt hash, the only kind docker-registry takes; the password goes through the environment. */
function htpasswd(user: string, pass: string): string {
  const env = { ...process.env, HTPASS: pass };
  try {
    const script = "import crypt, os; print(crypt.crypt(os.environ['HTPASS'], crypt.mksalt(crypt.METHOD_BLOWFISH)))";
    return `${user}:${execFileSync('python3', ['-W', 'ignore', '-c', script], { env, encoding: 'utf8' }).trim()}\n`;
  } catch {
    // Python 3.13 has no crypt module: apache2-utils' htpasswd does the same.
    return execFileSync('sh', ['-c', 'htpasswd -niB "$0" <<EOF\n$HTPASS\nEOF', user], { env, encoding: 'utf8' });
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-auth-registry-'));
  fs.writeFileSync(path.join(dir, 'htpasswd'), htpasswd(USER, password));
  const addr = `127.0.0.1:${await freePort()}`;
  // The test registry's own storage, read only: it already holds busybox, now behind a login.
  fs.writeFileSync(
    path.join(dir, 'registry.yml'),
    `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${registryStorage()}
  maintenance:
    readonly:
      enabled: true
    uploadpurging:
      enabled: false
http:
  addr: ${addr}
auth:
  htpasswd:
    realm: causeway-test
    path: ${path.join(dir, 'htpasswd')}
`,
  );
  registry = startProcess(dir, 'registry', 'docker-registry', ['serve', path.join(dir, 'registry.yml')]);
  await waitFor('registry', registry, async () => (await request(`http://${addr}/v2/`, {})).status === 401);
  image = `${addr}/library/busybox`;
  h = await startContainerdHarness({
    credentials: {
      team: 'main',
      redact: true,
      cluster: new DummyStore({ 'main/registry_password': password, 'main/wrong_password': wrongPassword }),
    },
  });
});
afterAll(async () => {
  await h?.stop();
  await stopProcesses([registry]);
  fs.rmSync(dir, { recursive: true, force: true });
  try {
    ctr(['images', 'rm', `${image}:latest`]);
  } catch {
    // never pulled
  }
});

function pullTask(name: string, source: Record<string, unknown>): string {
  return `plan:\n- ${task(name, 'cat /etc/os-release', {}, { image_resource: { type: 'registry-image', source: { repository: image, ...source } } })}`;
}

/**
 * Every process's command line and environment, read again and again until `stop`: what root on
 * the worker's host could see of a pull while it runs. Returns the command lines of `ctr` pulls seen.
 */
async function watchProcesses(secret: string, stop: { done: boolean }): Promise<{ pulls: string[]; leaks: string[] }> {
  const pulls = new Set<string>();
  const leaks: string[] = [];
  while (!stop.done) {
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      for (const file of ['cmdline', 'environ']) {
        let text: string;
        try {
          text = fs.readFileSync(`/proc/${pid}/${file}`, 'utf8').replace(/\0/g, ' ');
        } catch {
          continue; // gone meanwhile
        }
        if (text.includes(secret)) leaks.push(`/proc/${pid}/${file}: ${text.replace(secret, '<password>')}`);
        if (file === 'cmdline' && /\bctr\b.* pull /.test(text)) pulls.add(text.trim());
      }
    }
    await new Promise((r) => setImmediate(r));
  }
  return { pulls: [...pulls], leaks };
}

/** Everything the build published (logs, notes, events) and its history as stored, as text. */
async function published(r: BuildRun): Promise<string> {
  let out = JSON.stringify(r);
  for await (const rec of readBuild(h.nc, r.buildId, { follow: false }))
    out += rec.kind === 'event' ? JSON.stringify(rec.event) : Buffer.from(rec.data).toString('utf8');
  return out + historyToJSON(await h.client.workflow.getHandle(r.buildId).fetchHistory());
}

test('a wrong password errors the step with the registry’s reason; the right one pulls; neither is in the history or logs', async () => {
  const refused = await h.run(pullTask('wrong', { username: USER, password: '((wrong_password))' }), { deferUnsourced: true });
  expect(refused.status).toBe('errored');
  expect(refused.message).toMatch(/401 Unauthorized.*refused the login of ci-bot/);
  expect(await published(refused)).not.toContain(wrongPassword);

  const stop = { done: false };
  const watching = watchProcesses(password, stop);
  const r = await h.run(pullTask('right', { username: USER, password: '((registry_password))' }), { deferUnsourced: true }).finally(() => {
    stop.done = true;
  });
  const { pulls, leaks } = await watching;
  expect(r.status).toBe('succeeded');
  expect(r.logs.get('plan.0')).toContain('Causeway busybox');
  // The pull was seen while it ran, with the username only: no process ever held the password.
  expect(pulls.some((p) => p.includes(`--user ${USER} `))).toBe(true);
  expect(leaks).toEqual([]);
  const text = await published(r);
  expect(text).toContain(`image ${image}:latest: pulling as ${USER}`);
  expect(text).not.toContain(password);
  expect(text).not.toContain(Buffer.from(password).toString('base64').slice(0, 12));
});

test('a private image already pulled serves no step without the login: the registry is asked again', async () => {
  const r = await h.run(pullTask('right', { username: USER, password: '((registry_password))' }), { deferUnsourced: true });
  expect(r.status).toBe('succeeded');
  const anonymous = await h.run(pullTask('anonymous', {}));
  expect(anonymous.status).toBe('errored');
  expect(anonymous.message).toMatch(/401 Unauthorized.*wants a login/);
  const wrong = await h.run(pullTask('wrong', { username: USER, password: '((wrong_password))' }), { deferUnsourced: true });
  expect(wrong.status).toBe('errored');
  expect(wrong.message).toContain('refused the login');
});
