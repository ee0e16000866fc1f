#!/usr/bin/env node
/**
 * Entry point of the `lva` command (package.json "bin"). From a clone: `npx tsx src/cli/lva.ts …` or `bin/lva.mjs …`.
 */
import { main } from './main.js';

const code = await main(process.argv.slice(2), {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  progress: process.stderr.isTTY === true,
});
process.exitCode = code;
