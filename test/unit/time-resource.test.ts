// The time base resource's check: pure, with the clock passed in.
import { check, SourceSchema } from '../../resources/src/time';

const source = (s: Record<string, unknown>) => SourceSchema.parse(s);
const at = (iso: string) => new Date(iso);

describe('time resource check', () => {
  test('interval: the first check gives now; a new version once the interval has passed', async () => {
    const s = source({ interval: '1h' });
    expect(await check(s, null, at('2026-12-02T10:00:00Z'))).toEqual([{ time: '2026-12-02T10:00:00.000Z' }]);
    const v = { time: '2026-12-02T10:00:00.000Z' };
    expect(await check(s, v, at('2026-12-02T10:59:00Z'))).toEqual([v]);
    expect(await check(s, v, at('2026-12-02T11:00:00Z'))).toEqual([v, { time: '2026-12-02T11:00:00.000Z' }]);
  });

  test('start/stop in a location: nothing outside the window, one version per window without interval', async () => {
    const s = source({ start: '9:00 AM', stop: '5:00 PM', location: 'America/New_York' });
    // 13:00 UTC is 08:00 in New York (EST): before the window.
    expect(await check(s, null, at('2026-12-02T13:00:00Z'))).toEqual([]);
    const first = await check(s, null, at('2026-12-02T15:00:00Z'));
    expect(first).toEqual([{ time: '2026-12-02T15:00:00.000Z' }]);
    expect(await check(s, first[0], at('2026-12-02T20:00:00Z'))).toEqual(first);
    expect(await check(s, first[0], at('2026-12-03T15:00:00Z'))).toEqual([first[0], { time: '2026-12-03T15:00:00.000Z' }]);
  });

  test('initial_version gives a first version outside the window too', async () => {
    const s = source({ start: '9:00 AM', stop: '5:00 PM', initial_version: true });
    expect(await check(s, null, at('2026-12-02T20:00:00Z'))).toEqual([{ time: '2026-12-02T20:00:00.000Z' }]);
  });

  test('days: only on the listed weekdays (2026-12-02 is a Wednesday)', async () => {
    expect(await check(source({ interval: '1m', days: ['Monday'] }), null, at('2026-12-02T12:00:00Z'))).toEqual([]);
    expect(await check(source({ interval: '1m', days: ['Wednesday'] }), null, at('2026-12-02T12:00:00Z'))).toHaveLength(1);
  });

  test('a window may wrap midnight, and an explicit offset overrides the location', async () => {
    const s = source({ start: '10 PM +0000', stop: '2 AM +0000' });
    expect(await check(s, null, at('2026-12-02T23:30:00Z'))).toHaveLength(1);
    expect(await check(s, null, at('2026-12-02T12:00:00Z'))).toEqual([]);
  });

  test('bad sources fail with what to write', () => {
    expect(() => source({ interval: 'soon' })).toThrow(/invalid interval `soon`/);
    expect(() => source({ start: '25:00', stop: '1:00' })).toThrow(/invalid time of day `25:00`/);
    expect(() => source({ start: '9AM' })).toThrow(/start and stop go together/);
    expect(() => source({ location: 'Mars/Olympus' })).toThrow(/unknown time zone/);
    expect(() => source({ days: ['Funday'] })).toThrow(/days are Sunday/);
  });
});
