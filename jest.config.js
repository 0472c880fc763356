// Two projects: unit tests of pure code need no server; everything else runs
// against the real Temporal dev server and nats-server started once in globalSetup
// (a project's globalSetup runs only when one of its tests is selected).
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] };
const common = { testEnvironment: 'node', transform, moduleFileExtensions: ['ts', 'js', 'json'] };
const k8s = {
  ...common,
  transform: { '^.+\\.(ts|m?js)$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  transformIgnorePatterns: [
    '/node_modules/(?!(@kubernetes/client-node|jsonpath-plus|@jsep-plugin|jsep|openid-client|jose|oauth4webapi|rfc4648)/)',
  ],
  slowTestThreshold: 30,
};

module.exports = {
  // A global option: jest ignores it inside a project.
  testTimeout: 120000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/{workflows,e2e}/**/*.test.ts'],
      globalSetup: '<rootDir>/test/setup/global-setup.ts',
      globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
      slowTestThreshold: 30,
    },
    {
      // The containerd runtime against a real containerd of the run's own (Debian's containerd
      // and runc, root only), with a local registry serving the test image offline.
      ...common,
      displayName: 'containerd',
      testMatch: ['<rootDir>/test/containerd/**/*.test.ts'],
      globalSetup: '<rootDir>/test/containerd/setup/global-setup.ts',
      globalTeardown: '<rootDir>/test/containerd/setup/global-teardown.ts',
      slowTestThreshold: 30,
    },
    {
      // Against a real control plane (etcd, kube-apiserver, controller-manager, scheduler,
      // KWOK) built by scripts/k8s/provision.sh and started once in globalSetup.
      // @kubernetes/client-node and some of its dependencies are ES modules, which jest cannot
      // require() on Node 20: they are compiled to CommonJS like the tests.
      ...k8s,
      displayName: 'k8s',
      testMatch: ['<rootDir>/test/k8s/*.test.ts'],
      globalSetup: '<rootDir>/test/k8s/setup/global-setup.ts',
      globalTeardown: '<rootDir>/test/k8s/setup/global-teardown.ts',
    },
    {
      // `causeway dev up --runtime kubernetes`: the same control plane with one real node
      // (containerd, kubelet, kube-proxy, CoreDNS, a local registry with images built
      // offline) and a kubernetes worker; pods run real containers. Root only.
      ...k8s,
      displayName: 'k8s-node',
      testMatch: ['<rootDir>/test/k8s/node/**/*.test.ts'],
      globalSetup: '<rootDir>/test/k8s/node/setup/global-setup.ts',
      globalTeardown: '<rootDir>/test/k8s/node/setup/global-teardown.ts',
    },
  ],
};
