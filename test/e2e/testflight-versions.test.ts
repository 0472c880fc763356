// Concourse's testflight/resource_version_test.go and trigger_test.go on their fixtures
// (resource-version-every/latest, pinned-version, pinned-resource-simple-trigger, simple-trigger),
// unchanged, with the mock resource type: which version a get takes, and triggering.
import { randomUUID } from 'node:crypto';
import { testflight } from './testflight';

jest.setTimeout(600_000);
const tf = testflight('versions');
let hash: string;
beforeEach(() => {
  hash = randomUUID();
});

describe('when the version is not pinned on the resource', () => {
  test('version: latest only runs builds with the latest version', async () => {
    await tf.setAndUnpausePipeline('resource-version-latest', '-v', `hash=${hash}`);
    const guid1 = await tf.newMockVersion('some-resource', 'guid1');
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(guid1);

    await tf.newMockVersion('some-resource', 'guid2');
    await tf.newMockVersion('some-resource', 'guid3');
    const guid4 = await tf.newMockVersion('some-resource', 'guid4');
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(guid4);
  });

  test('version: every runs builds with every version', async () => {
    await tf.setAndUnpausePipeline('resource-version-every', '-v', `hash=${hash}`);
    const guid1 = await tf.newMockVersion('some-resource', 'guid1');
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(guid1);

    const guid2 = await tf.newMockVersion('some-resource', 'guid2');
    const guid3 = await tf.newMockVersion('some-resource', 'guid3');
    const guid4 = await tf.newMockVersion('some-resource', 'guid4');
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(guid2);
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(guid3);
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(guid4);
  });

  test('version: pinned only runs builds with the pinned version', async () => {
    await tf.setAndUnpausePipeline('resource-version-every', '-v', `hash=${hash}`);
    const guid1 = await tf.newMockVersion('some-resource', 'guid1');
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(guid1);

    await tf.newMockVersion('some-resource', 'guid2');
    const guid3 = await tf.newMockVersion('some-resource', 'guid3');
    await tf.newMockVersion('some-resource', 'guid4');
    await tf.setPipeline('pinned-version', '-v', `hash=${hash}`, '-v', `pinned_version=${guid3}`);
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(guid3);
  });
});

describe('when the version is pinned on the resource', () => {
  // BeforeEach: set with no pin, make older, pinned, newer; JustBeforeEach: pin `pinned` in the config.
  async function pinned(versionConfig: (older: string) => string): Promise<string> {
    const set = (pin: string, config: string) =>
      tf.setPipeline(
        'pinned-resource-simple-trigger',
        '-y',
        `pinned_resource_version=${pin}`,
        '-y',
        `version_config=${config}`,
        '-v',
        `hash=${hash}`,
      );
    await set('null', 'null');
    await tf.fly('unpause-pipeline', '-p', tf.pipeline);
    const older = await tf.newMockVersion('some-resource', 'older');
    const pinnedGUID = await tf.newMockVersion('some-resource', 'pinned');
    await tf.newMockVersion('some-resource', 'newer');
    await set(`{"version":"${pinnedGUID}"}`, versionConfig(older));
    return pinnedGUID;
  }

  test('version: latest only runs builds with the pinned version', async () => {
    const pinnedGUID = await pinned(() => 'latest');
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(pinnedGUID);
  });

  test('version: every only runs builds with the pinned version', async () => {
    const pinnedGUID = await pinned(() => 'every');
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(pinnedGUID);
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(pinnedGUID);
  });

  test('version: pinned (another version in the get) only runs builds with the resource pinned version', async () => {
    const pinnedGUID = await pinned((older) => `version:${older}`);
    expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(pinnedGUID);
  });
});

describe('a job with an input with trigger: true', () => {
  test('triggers when the resource changes', async () => {
    await tf.setAndUnpausePipeline('simple-trigger', '-v', `hash=${hash}`);
    // running on the initial version
    expect((await tf.fly('check-resource', '-r', tf.inPipeline('some-resource'), '-f', 'version:first-version')).code).toBe(0);
    expect((await tf.waitForBuildAndWatch('some-passing-job')).stdout).toContain('first-version');
    // running again when there's a new version
    expect((await tf.fly('check-resource', '-r', tf.inPipeline('some-resource'), '-f', 'version:second-version')).code).toBe(0);
    expect((await tf.waitForBuildAndWatch('some-passing-job', 2)).stdout).toContain('second-version');
  });
});
