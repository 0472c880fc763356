// Builds isolated from each other on the local runtime, tried as an attacker would: build B runs
// a step that holds an artifact and a service in its own network namespace; a step of build A
// tries to list and read B's directory, kill B's step, read the worker's environment, enter B's
// namespace, write into CAUSEWAY_HOME and read its codec keys. Each is refused, and its /proc
// lists neither B's processes nor the worker's. Needs a root
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
      // Its /proc lists its own processes only: not the victim's step, nor the worker.
      `ls /proc | grep -x '[0-9]*' | tr '\\n' ' ' | sed 's/^/procs: /'; echo`,
      `[ -e /proc/$$ ] && echo own:visible`,
      // The marker from a file, written in two pieces: this script's and grep's command lines must not hold it.
      `printf %s "${m.slice(0, 4)}" "${m.slice(4)}" > "$TMPDIR/marker"; grep -l -F -f "$TMPDIR/marker" /proc/[0-9]*/cmdline 2>/dev/null | sed 's/^/SEEN:/'; echo seen-done`,
    ].join('\n');
    // The loader's variables in a step's params reach its own program, never the root helpers that start it:
    // LD_DEBUG_OUTPUT would have root's shell write a file into CAUSEWAY_HOME (LD_PRELOAD would run a library as root).
    const loader = sh('loader', 'echo "lib=$LD_LIBRARY_PATH"', {
      params: { LD_LIBRARY_PATH: '/nonexistent-lib', LD_DEBUG: 'files', LD_DEBUG_OUTPUT: `${h.home}/pwned-ld` },
    });
    const attacker = await h.run(`plan:\n- ${sh('attack', script)}\n- ${loader}\n`);
    expect(attacker.status).toBe('succeeded');
    const lines = attacker.logs.get('plan.0')!.trim().split('\n');
    const [uidA, ...results] = lines;
    const [procs, own, seen] = results.splice(ATTEMPTS.length);
    expect(results).toHaveLength(ATTEMPTS.length);
    // The worker's /proc/PID is not even there for the step (hidepid=invisible).
    ATTEMPTS.forEach((name, i) => expect(results[i]).toMatch(new RegExp(`^refused:${name}: .*(denied|not permitted|no such file)`, 'i')));
    const listed = procs.replace('procs: ', '').trim().split(' ').map(Number);
    expect(listed).not.toContain(victimPid);
    expect(listed).not.toContain(process.pid);
    expect(listed).not.toContain(1);
    expect(own).toBe('own:visible');
    expect(seen).toBe('seen-done');
    expect(fs.existsSync(path.join(h.home, 'pwned'))).toBe(false);
    expect(attacker.logs.get('plan.1')).toContain('lib=/nonexistent-lib\n');
    expect(fs.readdirSync(h.home).filter((f) => f.startsWith('pwned-ld'))).toEqual([]);
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

  test("a daemon a step left behind (its own session, outside the step's process group) is killed at the build's end", async () => {
    const m = marker('daemon');
    markers.push(m);
    const r = await h.run(
      `plan:\n- ${sh('leave', `setsid sh -c 'sleep 300; : ${m}' </dev/null >/dev/null 2>&1 & sleep 0.2; echo left`)}\n`,
    );
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0')).toBe('left\n');
    // finishBuild released the build's uid, and with it every process still running as it.
    await waitFor('the daemon gone', () => (pidsMatching(m).length === 0 ? true : undefined));
  });
});
