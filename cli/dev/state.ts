// The dev stack's state file and where a client finds the stack: what every client command
// reads before it connects, kept apart from starting and stopping the stack (./stack.ts), whose
// child_process, NATS and Temporal imports a client command would otherwise load for nothing.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { causewayHome, readEnv } from '../../common/config';

const Pid = z.number().int().positive();

export const StackStateSchema = z.object({
  persistent: z.boolean(),
  logDir: z.string(),
  temporal: z.object({
    address: z.string(),
    uiUrl: z.string(),
    pid: Pid,
    command: z.string(),
    /** what it was started with, so one component can be restarted alone (absent in older state files) */
    args: z.array(z.string()).default([]),
    dbFile: z.string().nullable(),
    logFile: z.string(),
  }),
  nats: z.object({
    url: z.string(),
    monitorUrl: z.string(),
    pid: Pid,
    command: z.string(),
    args: z.array(z.string()).default([]),
    storeDir: z.string(),
    logFile: z.string(),
  }),
  workers: z.array(z.object({ name: z.string(), pid: Pid, command: z.string(), logFile: z.string() })),
  /** the Temporal UI's payload decoder (absent in stacks without a worker, and in older state files) */
  codecServer: z.object({ url: z.string(), pid: Pid, command: z.string(), logFile: z.string() }).optional(),
  startedAt: z.iso.datetime(),
});

export type StackState = z.infer<typeof StackStateSchema>;
export interface Endpoints {
  temporalAddress: string;
  natsUrl: string;
}

/**
 * Alive and still the process we started: a pid can be recycled after a reboot, and a
 * zombie (exited, not yet reaped by its parent) still answers kill(0) but has no cmdline.
 */
export function isAlive(pid: number, command: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!fs.existsSync('/proc/self/cmdline')) return true;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(command);
  } catch {
    return false;
  }
}

export function stateFile(home: string): string {
  return path.join(home, 'stack.json');
}

/** The recorded stack, or undefined if none; a corrupt file is an error naming the file. */
export function readState(home: string): StackState | undefined {
  const file = stateFile(home);
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Error(`${file} is not JSON; remove it if no dev stack is running`);
  }
  const parsed = StackStateSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`${file} is not a valid dev stack state (${parsed.error.issues[0]?.message}); remove it if no dev stack is running`);
  }
  return parsed.data;
}

/**
 * Where Causeway talks to: TEMPORAL_ADDRESS / NATS_URL win, else the live dev stack in
 * CAUSEWAY_HOME; undefined when neither knows, so the caller can start a stack or say how.
 */
export function resolveEndpoints(env: NodeJS.ProcessEnv = process.env): Endpoints | undefined {
  const parsed = readEnv(env);
  let temporalAddress = parsed.TEMPORAL_ADDRESS;
  let natsUrl = parsed.NATS_URL;
  if (temporalAddress === undefined || natsUrl === undefined) {
    const state = readState(causewayHome(parsed));
    if (state && isAlive(state.temporal.pid, state.temporal.command)) temporalAddress ??= state.temporal.address;
    if (state && isAlive(state.nats.pid, state.nats.command)) natsUrl ??= state.nats.url;
  }
  return temporalAddress !== undefined && natsUrl !== undefined ? { temporalAddress, natsUrl } : undefined;
}
