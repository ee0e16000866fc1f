#!/usr/bin/env node
// Launcher for use from a clone: runs the built CLI (dist/cli/lva.js) when present, otherwise the TypeScript
// source through tsx (a devDependency), so `bin/lva.mjs adapt …` works without a build step.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/cli/lva.js', import.meta.url);
if (existsSync(fileURLToPath(built))) {
  await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/cli/lva.ts', import.meta.url).href);
}
