// What every container runtime adds to a step's environment.

/**
 * A step's files come from other containers or the host (a get's repository, unpacked by the
 * build's uid on containerd or by the fetcher's non-root uid on kubernetes), so they are not the
 * step's user's, and git refuses such a repository ("detected dubious ownership"). As
 * actions/checkout does for its workspace, the container's git trusts them: git reads
 * safe.directory only from protected config, which GIT_CONFIG_COUNT is. Set first, so a step's
 * own GIT_CONFIG_* params win.
 */
export const TRUST_BUILD_FILES: Readonly<Record<string, string>> = {
  GIT_CONFIG_COUNT: '1',
  GIT_CONFIG_KEY_0: 'safe.directory',
  GIT_CONFIG_VALUE_0: '*',
};
