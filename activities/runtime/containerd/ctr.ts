// containerd through Debian's `ctr` (containerd 1.6), for what is rare (pulls, image reads, the
// build's end) and for services: every call is one short command, run by the local runtime's
// process helper (no fork of the worker itself). A service's container is started by `ctr run`
// inside the same detached wrapper a local service uses (activities/runtime/local/process.ts).
// A task's hot path goes through containerd's API instead (api.ts).
import { spawn } from 'node:child_process';
import { StepErrored } from '../../errors';
import { systemTool } from '../local/network';
import { runCommand } from '../local/spawner';

/** The containerd namespace of every container, image and snapshot of Causeway's. */
export const CONTAINERD_NAMESPACE = 'causeway';
/** The label naming the build a container or snapshot belongs to (finishBuild, the reconciler). */
export const BUILD_LABEL = 'causeway.build';

export interface CtrOptions {
  /** containerd's gRPC socket */
  socket: string;
  /** registry hosts configuration (containerd's hosts.toml per registry), for mirrors */
  hostsDir?: string;
}

export class Ctr {
  constructor(readonly opts: CtrOptions) {}

  /** The argv of a ctr command against this containerd (the wrapper runs `ctr run` with it). */
  argv(args: string[]): string[] {
    return [systemTool('ctr'), '--address', this.opts.socket, '--namespace', CONTAINERD_NAMESPACE, ...args];
  }

  /** Runs a ctr command to its end; throws with ctr's own message when it fails. */
  async run(args: string[], what: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const [file, ...rest] = this.argv(args);
    const r = await runCommand(file, rest, { timeoutMs: opts.timeoutMs ?? 120_000 });
    if (r.code !== 0) {
      const message = lastLine(r.stderr) || (r.timedOut ? 'timed out' : `exit status ${r.code ?? r.signal}`);
      throw new CtrError(`${what}: ${message.replace(/^ctr: /, '')}`, r.stderr);
    }
    return r.stdout;
  }

  /**
   * Runs a ctr command that prompts for a password (`--user NAME` without `:PASSWORD`) and
   * answers it: ctr 1.6 takes a registry password only on its command line, which every process
   * on the host can read in /proc/PID/cmdline, or from a terminal. So ctr runs in a pseudo
   * terminal of util-linux's `script` (raw, echo off, before ctr starts) and gets the password there,
   * once it has asked for it. Its stdout and stderr are the terminal's output, together. Spawned
   * from the worker itself: the process helper has no stdin to give it, and a login is rare.
   */
  runWithPassword(args: string[], password: string, what: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    const command = `stty raw -echo && exec ${this.argv(args).map(q).join(' ')}`;
    return new Promise<string>((resolve, reject) => {
      const child = spawn(systemTool('script'), ['--quiet', '--return', '--command', command, '/dev/null'], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SHELL: '/bin/sh' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      let answered = false;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs ?? 120_000);
      const take = (d: Buffer) => {
        out += d.toString('utf8');
        if (!answered && out.includes('Password:')) {
          answered = true;
          child.stdin.write(`${password}\n`);
        }
      };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
      child.stdin.on('error', () => undefined);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        child.stdin.destroy();
        // The terminal's line endings and ctr's progress redraws are no part of what it said.
        const text = out.replace(/\r/g, '').replace(TERMINAL_CONTROL, '');
        if (code === 0) return resolve(text);
        const message = lastLine(text) || (timedOut ? 'timed out' : `exit status ${code ?? signal}`);
        reject(new CtrError(`${what}: ${message.replace(/^ctr: /, '')}`, text));
      });
    });
  }

  /** Like run (or runWithPassword), but a failure is the step's (a bad image, a refused login): StepErrored. */
  async forStep(args: string[], what: string, opts: { timeoutMs?: number; password?: string } = {}): Promise<string> {
    try {
      return opts.password === undefined ? await this.run(args, what, opts) : await this.runWithPassword(args, opts.password, what, opts);
    } catch (err) {
      if (err instanceof CtrError) throw new StepErrored(err.message, 'ContainerdError');
      throw err;
    }
  }
}

/** A terminal's control sequences (ctr's progress redraws): ESC [ parameters letter. */
const TERMINAL_CONTROL = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, 'g');

export class CtrError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'CtrError';
  }
}

export function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}
