// The layering of DESIGN.md ("Layout"): schemas <- common <- activities/workflows <- workers <- cli,
// and no import cycles anywhere. `npm run check:deps`; .ci/run runs it before the tests.
const layer = (name, mayNotImport, comment) => ({
  name: `layer-${name}`,
  comment,
  severity: 'error',
  from: { path: `^${name}/` },
  to: { path: `^(${mayNotImport.join('|')})/` },
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'an import cycle: break it by moving the shared part down a layer',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    layer('schemas', ['common', 'activities', 'workflows', 'workers', 'cli'], 'schemas is the bottom layer'),
    layer('common', ['activities', 'workflows', 'workers', 'cli'], 'common sits below activities and workflows'),
    layer('activities', ['workflows', 'workers', 'cli'], 'activities do not know the workflows that call them'),
    layer('workers', ['cli'], 'the CLI starts workers, not the other way round'),
    {
      name: 'workflows-import-activities-by-type',
      comment: 'workflow code is bundled for the sandbox: it may import activities only with `import type`',
      severity: 'error',
      from: { path: '^workflows/' },
      to: { path: '^activities/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'cli-talks-to-temporal-and-nats',
      comment: 'the CLI imports workers/, common/, schemas/ and workflow types, never activities',
      severity: 'error',
      from: { path: '^cli/' },
      to: { path: '^activities/' },
    },
    {
      name: 'cli-imports-workflows-by-type',
      comment: 'the CLI may read workflow types, not run workflow code',
      severity: 'error',
      from: { path: '^cli/' },
      to: { path: '^workflows/', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports count: a cycle of types is still a cycle of concerns.
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
  },
};
