import { startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const task = (name: string, script: string, extra = '') => `
- task: ${name}
  config:
    platform: linux
    run: {path: sh, args: [-c, '${script}']}
${extra}`;

describe('task', () => {
  test('a passing task succeeds and its output reaches NATS byte for byte', async () => {
    const r = await h.run(`plan:${task('hello', 'printf "héllo\\\\n"; echo err >&2')}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0')).toContain('héllo\n');
    expect(r.logs.get('plan.0')).toContain('err\n');
  });

  test('a task exiting non-zero fails the build with its exit code', async () => {
    const r = await h.run(`plan:${task('boom', 'exit 3')}`);
    expect(r.status).toBe('failed');
    const step = r.summary?.steps.find((s) => s.id === 'plan.0');
    expect(step).toMatchObject({ state: 'failed', exitCode: 3 });
  });
});
