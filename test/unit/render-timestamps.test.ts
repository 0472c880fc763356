// `watch -t`, as fly's TimestampedWriter: every line of the log starts with the local time its
// output reached the log, the step headers and notes too, and a line cut across two messages
// is stamped once.
import { PassThrough } from 'node:stream';
import { BuildRenderer } from '../../cli/render';

test('each line starts with its local time, a line continued in a later message only once', () => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += d));
  const at = (s: number) => new Date(2026, 11, 4, 9, 5, s);
  const renderer = new BuildRenderer(out, { showSteps: () => true, timestamps: true });
  renderer.write({
    kind: 'event',
    time: at(1),
    event: { type: 'step-started', buildId: 'b', stepId: 'plan.0', name: 'unit', attempt: 1, time: '' },
  });
  renderer.write({ kind: 'log', time: at(2), stepId: 'plan.0', stream: 'stdout', data: Buffer.from('one\ntwo\nthr') });
  renderer.write({ kind: 'log', time: at(3), stepId: 'plan.0', stream: 'stdout', data: Buffer.from('ee\nfour\n') });
  expect(text).toBe(
    ['09:05:02  ── unit [plan.0] ──', '09:05:02  one', '09:05:02  two', '09:05:02  three', '09:05:03  four', ''].join('\n'),
  );
});
