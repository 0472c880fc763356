// The pure parts of the kubernetes runtime's services: how a log is cut into messages (ids
// that do not depend on how the kubelet chunked the stream), what its messages redact, and the
// addresses a service's own spec sees.
import type { KubeApi } from '../../activities/runtime/kubernetes/api';
import { joinPieces, LineCutter, type LogPiece } from '../../activities/runtime/kubernetes/log-pieces';
import { ServiceLog } from '../../activities/runtime/kubernetes/service-log';
import { siblingScope, type ServiceAddress } from '../../common/services';

function cut(chunks: string[], max?: number): { text: string; offset: number }[] {
  const cutter = new LineCutter(max);
  const pieces: LogPiece[] = [...chunks.flatMap((c) => cutter.push(Buffer.from(c))), ...cutter.end()];
  return pieces.map((p) => ({ text: p.data.toString('utf8'), offset: p.offset }));
}

describe('joinPieces', () => {
  const piece = (offset: number, text: string): LogPiece => ({ offset, data: Buffer.from(text) });
  const texts = (pieces: LogPiece[]) => pieces.map((p) => ({ text: p.data.toString('utf8'), offset: p.offset }));

  test('consecutive lines become one message of up to max bytes, each starting where the last ended', () => {
    const lines = ['a\n', 'bb\n', 'c\n', 'dddd\n', 'e'];
    let at = 0;
    const pieces = lines.map((l) => {
      const p = piece(at, l);
      at += l.length;
      return p;
    });
    expect(texts(joinPieces(pieces, 7))).toEqual([
      { text: 'a\nbb\nc\n', offset: 0 },
      { text: 'dddd\ne', offset: 7 },
    ]);
    expect(Buffer.concat(joinPieces(pieces).map((p) => p.data)).toString()).toBe(lines.join(''));
  });

  test('a piece that does not follow the one before starts a message of its own', () => {
    expect(texts(joinPieces([piece(0, 'a\n'), piece(5, 'b\n'), piece(7, 'c\n')]))).toEqual([
      { text: 'a\n', offset: 0 },
      { text: 'b\nc\n', offset: 5 },
    ]);
  });

  test('many tiny lines (more than a call takes arguments) join without a stack overflow', () => {
    const cutter = new LineCutter();
    const pieces = cutter.push(Buffer.from('\n'.repeat(300_000)));
    expect(pieces).toHaveLength(300_000);
    const joined = joinPieces(pieces);
    expect(joined.map((p) => p.data.length)).toEqual([65_536, 65_536, 65_536, 65_536, 37_856]);
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
