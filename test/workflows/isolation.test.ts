// Builds isolated from each other on the local runtime, tried as an attacker would: build B runs
// a step that holds an artifact and a service in its own network namespace; a step of build A
// tries to list and read B's directory, kill B's step, read the worker's environment, enter B's
// namespace, write into CAUSEWAY_HOME and read its codec keys. Each is refused. Needs a root
// worker (only root can change uids); CI runs as root.
import fs from 'node:fs';
import path from 'node:path';
import { networkName } from '../../common/services';
import { BUILD_UID_COUNT, BUILD_UID_FIRST } from '../../activities/runtime/local/isolation';
import { killMatching, marker, pidsMatching, sh, startHarness, waitFor, type Harness } from './harness';

const root = process.getuid?.() === 0;
let h: Harness;
const markers: string[] = [];
beforeAll(async () => {
  if (root) h = await startHarness();
});
afterAll(async () => {
  markers.forEach(killMatching);
  await h?.stop();
});

/** Paths of files named `name` under `dir`, as root sees them. */
function findFiles(dir: string, name: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...findFiles(p, name));
    else if (e.name === name) out.push(p);
  }
  return out;
}

const ATTEMPTS = ['list', 'read', 'kill', 'environ', 'nsenter', 'write', 'keys'] as const;

(root ? describe : describe.skip)('a step of one build cannot touch another build or the worker', () => {
  test('each attempt is refused, and each build ran under a uid of its own, released at its end', async () => {
    const m = marker('victim');
    markers.push(m);
    const victim = await h.start(
      `plan:\n- ${sh(
        'hold',
        `id -u > out/uid; echo victim-secret > out/secret; exec sleep 300 # ${m}`,
        {
          services: [{ name: 'svc', config: { run: { path: 'sh', args: ['-c', `sleep 300; : ${m}`] } } }],
        },
        { outputs: [{ name: 'out' }] },
      )}\n`,
    );
    const buildB = path.join(h.home, 'builds', victim.workflowId);
    const secret = await waitFor('the victim’s artifact', () => {
      const found = fs.existsSync(buildB) ? findFiles(buildB, 'secret') : [];
      return found.length > 0 && fs.readFileSync(found[0], 'utf8') === 'victim-secret\n' ? found[0] : undefined;
    });
    const [victimPid] = await waitFor('the victim’s step', () => {
      const pids = pidsMatching(`sleep 300 # ${m}`);
      return pids.length > 0 ? pids : undefined;
    });
    const netns = `/run/netns/${networkName(victim.workflowId)}`;
    expect(fs.existsSync(netns)).toBe(true);
    if (!fs.existsSync(path.join(h.home, 'codec-keys.json'))) fs.writeFileSync(path.join(h.home, 'codec-keys.json'), '{}', { mode: 0o600 });

    const attempt = (name: string, cmd: string) =>
      `if ${cmd} >/dev/null 2>err; then echo ALLOWED:${name}; else echo "refused:${name}: $(cat err)"; fi`;
    const script = [
      'id -u',
      attempt('list', `ls "${buildB}"`),
      attempt('read', `cat "${secret}"`),
      attempt('kill', `kill -9 ${victimPid}`),
      attempt('environ', `cat /proc/${process.pid}/environ`),
      attempt('nsenter', `nsenter --net=${netns} true`),
      attempt('write', `touch "${h.home}/pwned"`),
      attempt('keys', `cat "${h.home}/codec-keys.json"`),
    ].join('\n');
    const attacker = await h.run(`plan:\n- ${sh('attack', script)}\n`);
    expect(attacker.status).toBe('succeeded');
    const lines = attacker.logs.get('plan.0')!.trim().split('\n');
    const [uidA, ...results] = lines;
    expect(results).toHaveLength(ATTEMPTS.length);
    ATTEMPTS.forEach((name, i) => expect(results[i]).toMatch(new RegExp(`^refused:${name}: .*(denied|not permitted)`, 'i')));
    expect(fs.existsSync(path.join(h.home, 'pwned'))).toBe(false);
    expect(pidsMatching(`sleep 300 # ${m}`)).toContain(victimPid);

    await victim.cancel();
    const ended = await h.finish(victim);
    expect(ended.status).toBe('aborted');
    const uidB = fs.readFileSync(path.join(path.dirname(secret), 'uid'), 'utf8').trim();
    for (const uid of [Number(uidA), Number(uidB)]) {
      expect(uid).toBeGreaterThanOrEqual(BUILD_UID_FIRST);
      expect(uid).toBeLessThan(BUILD_UID_FIRST + BUILD_UID_COUNT);
    }
    expect(uidA).not.toBe(uidB);
    // Both builds ended through finishBuild: their leases are gone, B's directory is closed to its old uid.
    for (const id of [attacker.buildId, victim.workflowId])
      expect(fs.existsSync(path.join(h.home, 'build-uids', 'builds', id))).toBe(false);
    expect(fs.statSync(buildB).uid).toBe(0);
    expect(fs.statSync(buildB).mode & 0o777).toBe(0o700);
    expect(pidsMatching(m)).toEqual([]);
  });
});
