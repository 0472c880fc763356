// containerd through Debian's `ctr` (containerd 1.6), for what is rare (pulls, image reads, the
// build's end) and for services: every call is one short command, run by the local runtime's
// process helper (no fork of the worker itself). A service's container is started by `ctr run`
// inside the same detached wrapper a local service uses (activities/runtime/local/process.ts).
// A task's hot path goes through containerd's API instead (api.ts).
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

  /** Like run, but a failure is the step's (a bad image, a refused login): StepErrored. */
  async forStep(args: string[], what: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    try {
      return await this.run(args, what, opts);
    } catch (err) {
      if (err instanceof CtrError) throw new StepErrored(err.message, 'ContainerdError');
      throw err;
    }
  }
}

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
