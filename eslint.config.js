// Lint rules the codebase enforces on itself: promises are never left floating (type-aware), and the layers of
// STYLE/README stay visible as import rules: cli -> session -> {store, signaling, replication, transport} -> core,
// nothing imports from cli, and each third-party library is used in one folder only. Formatting is prettier's job.
import tseslint from 'typescript-eslint';

const LIBRARIES = {
  lowdb: 'store',
  ws: 'signaling',
  'simple-peer': 'transport',
  'node-datachannel': 'transport',
  commander: 'cli',
  chalk: 'cli',
  ora: 'cli',
};

/** Third-party libraries a folder may not use: all those that live elsewhere. */
function foreignLibraries(folder) {
  return Object.entries(LIBRARIES)
    .filter(([, home]) => home !== folder)
    .map(([name, home]) => ({ name, message: `${name} belongs in src/${home}/ only.` }));
}

/** An import rule for one layer: the sibling folders it must not reach, and the libraries of other folders. */
function layer(folder, forbiddenFolders, why) {
  return {
    files: [folder === 'session' ? 'src/session.ts' : `src/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: foreignLibraries(folder),
          patterns: [
            ...forbiddenFolders.map((f) => ({
              group: [f === 'session' ? '**/session.js' : `**/${f}/**`],
              message: `src/${folder} must not import src/${f}${f === 'session' ? '.ts' : ''}: ${why}`,
            })),
            ...(folder === 'transport'
              ? []
              : [{ group: ['node-datachannel/*'], message: 'node-datachannel belongs in src/transport/ only.' }]),
          ],
        },
      ],
    },
  };
}

const NOT_CLI = 'nothing imports from the CLI';
export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/**/*.mjs', 'test/fixtures/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
  layer(
    'core',
    ['store', 'replication', 'transport', 'signaling', 'session', 'cli'],
    'core is the shared vocabulary, without I/O',
  ),
  layer(
    'replication',
    ['store', 'transport', 'signaling', 'session', 'cli'],
    'replication runs against the core interfaces only',
  ),
  layer('store', ['replication', 'transport', 'signaling', 'session', 'cli'], 'adapters depend on core only'),
  layer('transport', ['store', 'replication', 'signaling', 'session', 'cli'], 'adapters depend on core only'),
  layer('signaling', ['store', 'replication', 'transport', 'session', 'cli'], 'adapters depend on core only'),
  layer('session', ['cli'], NOT_CLI),
  layer('cli', ['replication', 'transport'], 'the CLI reaches replication and transport through session.ts'),
);
