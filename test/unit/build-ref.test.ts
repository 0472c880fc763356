// How watch and abort name a build: its id, or fly's -j PIPELINE/JOB [-b NUMBER].
import { parseBuildRef } from '../../cli/commands/build-ref';

describe('parseBuildRef', () => {
  it('takes a build id, or a job with or without a build number', () => {
    expect(parseBuildRef('build-1', {}, 'watch')).toEqual({ id: 'build-1' });
    expect(parseBuildRef(undefined, { job: 'p/j' }, 'watch')).toEqual({ job: 'p/j' });
    expect(parseBuildRef(undefined, { job: 'p/j', build: '3' }, 'watch')).toEqual({ job: 'p/j', number: 3 });
  });

  it('says what is wrong before anything connects', () => {
    expect(() => parseBuildRef(undefined, {}, 'abort')).toThrow('which build? give its id, or -j PIPELINE/JOB');
    expect(() => parseBuildRef('build-1', { job: 'p/j' }, 'watch')).toThrow('not both');
    expect(() => parseBuildRef(undefined, { build: '2' }, 'watch')).toThrow('-b NUMBER needs the job');
    for (const bad of ['0', '-1', '1.5', 'x', ''])
      expect(() => parseBuildRef(undefined, { job: 'p/j', build: bad }, 'watch')).toThrow('-b takes a build number');
  });
});
