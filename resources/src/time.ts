// The `time` base resource type: a new version every `interval`, and/or once per window
// between `start` and `stop` on the listed `days`, in `location`'s time zone. Versions are
// {time: <ISO timestamp>}, as Concourse's time resource.
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { parseDuration } from '../../schemas/units';
import { main, ResourceError, type Metadata, type Version } from './protocol';

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;

/** "3:04 PM", "3PM", "15:04", "1504", "3:04 PM -0700": minutes after midnight, and an optional UTC offset. */
const TIME_OF_DAY = /^(\d{1,2})(?::?(\d{2}))?\s*([AaPp][Mm])?(?:\s*([+-]\d{2}):?(\d{2}))?$/;

function parseTimeOfDay(text: string, ctx: z.RefinementCtx): { minutes: number; offsetMinutes?: number } {
  const m = TIME_OF_DAY.exec(text.trim());
  let hours = m ? Number(m[1]) : NaN;
  const minutes = m?.[2] ? Number(m[2]) : 0;
  if (m?.[3]) hours = (hours % 12) + (m[3].toUpperCase() === 'PM' ? 12 : 0);
  if (!m || hours > 23 || minutes > 59) {
    ctx.addIssue({ code: 'custom', message: `invalid time of day \`${text}\`: expected e.g. "3:04 PM", "15:04" or "1504"` });
    return z.NEVER;
  }
  const offsetMinutes = m[4] ? (m[4].startsWith('-') ? -1 : 1) * (Math.abs(Number(m[4])) * 60 + Number(m[5])) : undefined;
  return { minutes: hours * 60 + minutes, offsetMinutes };
}

export const SourceSchema = z
  .strictObject({
    interval: z
      .string()
      .transform((s, ctx) => {
        try {
          const ms = parseDuration(s);
          if (ms > 0) return ms;
        } catch {
          // reported below
        }
        ctx.addIssue({ code: 'custom', message: `invalid interval \`${s}\`: expected a Go duration like "10m" or "1h"` });
        return z.NEVER;
      })
      .optional(),
    start: z.string().transform(parseTimeOfDay).optional(),
    stop: z.string().transform(parseTimeOfDay).optional(),
    location: z
      .string()
      .refine((tz) => {
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, 'unknown time zone: expected an IANA name like "America/New_York"')
      .optional(),
    days: z.array(z.enum(DAYS, { error: `days are ${DAYS.join(', ')}` })).optional(),
    initial_version: z.boolean().optional(),
  })
  .refine((s) => (s.start === undefined) === (s.stop === undefined), 'start and stop go together');
type Source = z.infer<typeof SourceSchema>;

/** Weekday and minutes after midnight of `t` where the source's times are read. */
function localTime(source: Source, t: Date): { day: string; minutes: number; date: string } {
  const offset = source.start?.offsetMinutes;
  if (offset !== undefined) {
    const shifted = new Date(t.getTime() + offset * 60_000);
    return {
      day: DAYS[shifted.getUTCDay()],
      minutes: shifted.getUTCHours() * 60 + shifted.getUTCMinutes(),
      date: shifted.toISOString().slice(0, 10),
    };
  }
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: source.location ?? 'UTC',
      weekday: 'long',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    })
      .formatToParts(t)
      .map((p) => [p.type, p.value]),
  );
  return { day: parts.weekday, minutes: Number(parts.hour) * 60 + Number(parts.minute), date: `${parts.year}-${parts.month}-${parts.day}` };
}

function inRange(source: Source, t: Date): boolean {
  const local = localTime(source, t);
  if (source.days && !source.days.includes(local.day as (typeof DAYS)[number])) return false;
  if (!source.start || !source.stop) return true;
  const { minutes } = local;
  const [a, b] = [source.start.minutes, source.stop.minutes];
  // A window may wrap midnight ("10 PM" to "2 AM").
  return a <= b ? minutes >= a && minutes < b : minutes >= a || minutes < b;
}

export async function check(source: Source, version: Version | null, now = new Date()): Promise<Version[]> {
  const current = { time: now.toISOString() };
  const previous = version?.time ? new Date(version.time) : undefined;
  if (previous && Number.isNaN(previous.getTime())) throw new ResourceError(`version time \`${version?.time}\` is not a timestamp`);
  // initial_version: a first version at once, even outside the window, so a get can run.
  if (!inRange(source, now)) return version ? [version] : source.initial_version ? [current] : [];
  if (!previous || !version) return [current];
  if (source.interval !== undefined) return now.getTime() - previous.getTime() >= source.interval ? [version, current] : [version];
  // No interval: one version per window (per day when there is no start/stop).
  const sameWindow = localTime(source, previous).date === localTime(source, now).date && inRange(source, previous);
  return sameWindow ? [version] : [version, current];
}

async function get(_source: Source, version: Version, params: unknown, dest: string): Promise<{ version: Version; metadata: Metadata }> {
  await fs.mkdir(dest, { recursive: true });
  // As Concourse's time resource: the request as `input`, the version's time as `timestamp`.
  await fs.writeFile(path.join(dest, 'input'), JSON.stringify({ version, params }));
  await fs.writeFile(path.join(dest, 'timestamp'), `${version.time ?? ''}\n`);
  return { version, metadata: [{ name: 'time', value: version.time ?? '' }] };
}

async function put(): Promise<{ version: Version; metadata: Metadata }> {
  const time = new Date().toISOString();
  return { version: { time }, metadata: [{ name: 'time', value: time }] };
}

if (require.main === module) main('time', SourceSchema, { check: (s, v) => check(s, v), in: get, out: put });
