import { spawnSync } from 'node:child_process';
import { asUser, asUserHelper, asUserThroughTools } from '../../activities/runtime/local/users';

// A step started by the one-exec helper (as-user.c) must be what unshare, mount and setpriv made
// it: the same ids and groups, no capabilities, no_new_privs, its own /proc with hidepid and
// slave propagation, and the loader's variables set only for its command.
const NOBODY = { uid: 65534, gid: 65534 };
const PROBE = [
  '/bin/sh',
  '-c',
  [
    'id -u; id -g; id -G',
    'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)" /proc/self/status',
    'test -e /proc/1/cmdline && echo sees pid 1 || echo no pid 1',
    'grep -o "hidepid=[a-z0-9]*" /proc/self/mountinfo',
    'grep " / / " /proc/self/mountinfo | grep -o "master:" || echo shared or private',
    'echo "LD_X=$LD_X"',
  ].join('; '),
];

function probe(argv: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
}

const asRootWithHelper = process.getuid?.() === 0 && asUserHelper();

(asRootWithHelper ? test : test.skip)('as-user gives a step what unshare, mount and setpriv give it', () => {
  for (const groups of [[], [100, 4242]]) {
    const helper = probe(asUser(NOBODY, PROBE, groups, { LD_X: 'a=b' }));
    const tools = probe(asUserThroughTools(NOBODY, PROBE, groups, { LD_X: 'a=b' }));
    expect(helper.stderr).toBe('');
    expect(helper.status).toBe(0);
    expect(tools.status).toBe(0);
    expect(helper.stdout).toBe(tools.stdout);
    expect(helper.stdout).toContain('NoNewPrivs:\t1');
    expect(helper.stdout).toContain('CapBnd:\t0000000000000000');
    expect(helper.stdout).toContain('no pid 1');
    expect(helper.stdout).toContain('hidepid=invisible');
    expect(helper.stdout).toContain('LD_X=a=b');
  }
});

(asRootWithHelper ? test : test.skip)('as-user says what it could not execute, with setpriv’s exit status', () => {
  const r = probe(asUser(NOBODY, ['/nonexistent/command']));
  expect(r.status).toBe(127);
  expect(r.stderr).toContain('failed to execute /nonexistent/command');
});
