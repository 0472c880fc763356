// The dev stack's liveness check: a killed process nobody reaps is dead. On a machine whose init
// never reaps orphans, the dev worker SIGKILLed after `dev up` exited stayed a zombie, and the
// next `dev up` took it for a running worker and started none.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive } from '../../cli/dev/k8s/procs';

function state(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2];
  } catch {
    return undefined;
  }
}

test('a zombie is not alive; a running process is', async () => {
  // sh starts a child, kills it, then becomes `sleep`, which never waits: the child stays a zombie.
  const parent = spawn('sh', ['-c', 'sleep 60 & echo $!; kill -9 $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(d.toString()))));
    while (state(pid) !== 'Z') await sleep(20);
    expect(alive(pid)).toBe(false);
    expect(alive(parent.pid!)).toBe(true);
  } finally {
    parent.kill('SIGKILL');
  }
});
