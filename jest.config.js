/** Tests run as CommonJS through @swc/jest; `tsc --noEmit` is the separate type gate (see package.json). */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  transformIgnorePatterns: ['/node_modules/(?!onnx-buf/)'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 120000,
  // in CI a skipped test fails the run (tests/helpers/no-skips-in-ci.cjs)
  reporters: ['default', '<rootDir>/tests/helpers/no-skips-in-ci.cjs'],
};
