// The pure parts of the kubernetes runtime's logs and services: how a log is cut into messages
// (a service's: ids that do not depend on how the kubelet chunked the stream; a task's: up to
// 64 KiB at line ends), what a service's messages redact, and the addresses its own spec sees.
import type { KubeApi } from '../../activities/runtime/kubernetes/api';
import { LineCutter, LogBuffer, type LogPiece } from '../../activities/runtime/kubernetes/log-pieces';
import { ServiceLog } from '../../activities/runtime/kubernetes/service-log';
import { siblingScope, type ServiceAddress } from '../../common/services';

function cut(chunks: string[], max?: number): { text: string; offset: number }[] {
  const cutter = new LineCutter(max);
  const pieces: LogPiece[] = [...chunks.flatMap((c) => cutter.push(Buffer.from(c))), ...cutter.end()];
  return pieces.map((p) => ({ text: p.data.toString('utf8'), offset: p.offset }));
}

describe("LogBuffer (a task container's log)", () => {
  const texts = (pieces: LogPiece[]) => pieces.map((p) => ({ text: p.data.toString('utf8'), offset: p.offset }));
  const buffer = (chunks: string[], opts: { max?: number; countLinesTo?: number } = {}) => {
    const b = new LogBuffer(opts);
    for (const c of chunks) b.push(Buffer.from(c));
    return b;
  };

  test('whole lines become messages of up to max bytes, each starting where the last ended; the unfinished line once the log ends', () => {
    const b = buffer(['a\nbb\nc\ndddd\ne'], { max: 7 });
    expect(texts(b.read(0))).toEqual([
      { text: 'a\nbb\nc\n', offset: 0 },
      { text: 'dddd\n', offset: 7 },
    ]);
    expect(b.read(12)).toEqual([]);
    b.end();
    expect(texts(b.read(12))).toEqual([{ text: 'e', offset: 12 }]);
  });

  test("the same bytes, in messages ending at line ends (or a long line's cut), however the stream was chunked", () => {
    const log = 'first line\nsecond\n\nlast without newline';
    for (let a = 1; a < log.length; a++) {
      for (const b of [a + 1, a + 5, log.length - 1]) {
        if (b <= a || b >= log.length) continue;
        const buf = buffer([log.slice(0, a), log.slice(a, b), log.slice(b)], { max: 12 });
        buf.end();
        const read = buf.read(0);
        expect(Buffer.concat(read.map((p) => p.data)).toString()).toBe(log);
        // At a line end, or a long line's cut; never longer than max.
        expect(read.slice(0, -1).every((p) => p.data.at(-1) === 0x0a || p.data.length === 12)).toBe(true);
        expect(read.every((p) => p.data.length <= 12)).toBe(true);
        expect(read.map((p, i) => p.offset - (i === 0 ? 0 : read[i - 1].offset + read[i - 1].data.length))).toEqual(read.map(() => 0));
      }
    }
  });

  test('a long line is cut every max bytes from its start; unfinished, it is read as far as whole cuts', () => {
    const b = buffer(['xxx', 'xxxxxxx'], { max: 4 });
    expect(texts(b.read(0))).toEqual([
      { text: 'xxxx', offset: 0 },
      { text: 'xxxx', offset: 4 },
    ]);
    expect(b.read(8)).toEqual([]);
    b.push(Buffer.from('\nab'));
    expect(texts(b.read(8))).toEqual([{ text: 'xx\n', offset: 8 }]);
    b.end();
    expect(texts(b.read(11))).toEqual([{ text: 'ab', offset: 11 }]);
  });

  test('a read from inside a message takes the rest of it; offsets count bytes, not characters', () => {
    expect(texts(buffer(['héllo\n', 'wörld\n']).read(0))).toEqual([{ text: 'héllo\nwörld\n', offset: 0 }]);
    expect(texts(buffer(['héllo\n', 'wörld\n']).read(3))).toEqual([{ text: 'llo\nwörld\n', offset: 3 }]);
    expect(texts(buffer(['héllo\n', 'wörld\n'], { max: 7 }).read(0))).toEqual([
      { text: 'héllo\n', offset: 0 },
      { text: 'wörld\n', offset: 7 },
    ]);
  });

  test('300,000 tiny lines are read in 64 KiB messages; lines are counted only up to one past countLinesTo', () => {
    const b = new LogBuffer({ countLinesTo: 2000 });
    b.push(Buffer.from('\n'.repeat(300_000)));
    expect(b.read(0).map((p) => p.data.length)).toEqual([65_536, 65_536, 65_536, 65_536, 37_856]);
    expect(b.lines).toBe(2001);
    expect(b.received).toBe(300_000);
  });
});

describe('LineCutter', () => {
  const log = 'first line\nsecond\n\nlast without newline';

  test('one message per line, at its byte offset; the unfinished last line at the end', () => {
    expect(cut([log])).toEqual([
      { text: 'first line\n', offset: 0 },
      { text: 'second\n', offset: 11 },
      { text: '\n', offset: 18 },
      { text: 'last without newline', offset: 19 },
    ]);
  });

  test('the same messages however the stream was chunked', () => {
    const whole = cut([log]);
    for (let a = 1; a < log.length; a++) {
      for (const b of [a + 1, a + 5, log.length - 1]) {
        if (b <= a || b >= log.length) continue;
        expect(cut([log.slice(0, a), log.slice(a, b), log.slice(b)])).toEqual(whole);
      }
    }
    expect(cut([...log])).toEqual(whole);
  });

  test('a long line is cut every max bytes from its start, the same way whatever the chunks', () => {
    const long = `${'x'.repeat(10)}\nab`;
    const expected = [
      { text: 'xxxx', offset: 0 },
      { text: 'xxxx', offset: 4 },
      { text: 'xx\n', offset: 8 },
      { text: 'ab', offset: 11 },
    ];
    expect(cut([long], 4)).toEqual(expected);
    expect(cut(['xxx', 'xxxxxx', 'x\na', 'b'], 4)).toEqual(expected);
  });

  test('offsets count bytes, not characters', () => {
    expect(cut(['héllo\n', 'wörld\n'])).toEqual([
      { text: 'héllo\n', offset: 0 },
      { text: 'wörld\n', offset: 7 },
    ]);
  });

  test('the unfinished line so far, for the tail of a service that failed', () => {
    const cutter = new LineCutter();
    cutter.push(Buffer.from('done\nhalf a li'));
    expect(cutter.partial.toString()).toBe('half a li');
  });
});

describe('siblingScope', () => {
  const addr = (name: string, host: string): ServiceAddress => ({ name, host, ports: { default: 5432 }, primaryPort: 'default' });

  test('the step’s own services at the runtime’s hosts, with their ports; outer services as given', () => {
    const scope = { db: addr('db', '127.1.2.1'), web: addr('web', '127.1.2.2'), outer: addr('outer', 'cw-svc-outer-1.ns.svc') };
    expect(siblingScope(scope, ['db', 'web'], (name) => `${name}.ns.svc`)).toEqual({
      db: addr('db', 'db.ns.svc'),
      web: addr('web', 'web.ns.svc'),
      outer: addr('outer', 'cw-svc-outer-1.ns.svc'),
    });
    // not changed in place: the workflow's scope stays as it was
    expect(scope.db.host).toBe('127.1.2.1');
  });
});

describe('ServiceLog redaction', () => {
  test("the values in ref.redact never reach a message, the tail or a note; offsets stay the log's own bytes", async () => {
    const sent: { stream: string; text: string; id: string }[] = [];
    const ref = {
      buildId: 'b',
      runId: 'r',
      scopeStepId: 'plan.0',
      runKey: '1',
      name: 'db',
      redact: ['hunter22', { user: 'app', pass: 'pw-xyz' }],
    };
    // The Log API is not used: lines are handed to the log as follow() would hand them.
    const log = new ServiceLog({} as KubeApi, ref, async (stream, data, id) => {
      sent.push({ stream, text: Buffer.from(data).toString('utf8'), id });
    });
    await log.sendLines(new LineCutter().push(Buffer.from('password hunter22\nuser app pass pw-xyz\n')));
    await log.note('probe failed: hunter22');
    expect(sent.map((m) => m.text)).toEqual([
      'password ((redacted))\n',
      'user ((redacted)) pass ((redacted))\n',
      'probe failed: ((redacted))\n',
    ]);
    expect(sent.map((m) => m.id)).toEqual(['r/plan.0/1/svc/db/stdout/0', 'r/plan.0/1/svc/db/stdout/18', 'r/plan.0/1/svc/db/run/note/0']);
    expect(log.offsets.stdout).toBe(39);
    expect(log.tail()).toBe('password ((redacted))\nuser ((redacted)) pass ((redacted))');
    expect(log.redact('quoted hunter22')).toBe('quoted ((redacted))');
  });
});
