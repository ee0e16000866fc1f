/**
 * Browser bundle sizes of the three entry points, and a check that none of them reaches a Node built-in.
 *
 *   npx tsx examples/browser/bundle-size.ts            prints a Markdown table
 *   npx tsx examples/browser/bundle-size.ts --write    also replaces the table in examples/browser/README.md
 *
 * Each entry is bundled on its own by Vite (browser conditions plus `source`, so `lva-transfer/*` resolves to src/ as
 * the package's exports map says), as an ES module, minified, with the peers (`@tensorflow/*`, `onnxruntime-*`)
 * external and the dependencies (ts-pattern, @bufbuild/protobuf, onnx-buf) inside. Gzip is zlib level 9.
 * Exits non-zero if any module imports `node:*` or a Node built-in.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, defaultClientConditions, type Plugin, type Rolldown } from 'vite';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = fileURLToPath(new URL('./README.md', import.meta.url));
/** Each bundle keeps everything the listed entry points export (namespace re-exports, so nothing is shaken off). */
const ENTRIES = [
  { label: 'core alone', specifiers: ['lva-transfer'] },
  { label: 'core + tfjs adapter', specifiers: ['lva-transfer', 'lva-transfer/tfjs'] },
  { label: 'core + ONNX adapter', specifiers: ['lva-transfer', 'lva-transfer/onnx'] },
] as const;
const PEERS = /^(@tensorflow\/|onnxruntime-(web|common)(\/|$))/;
const BUILTINS = new Set(builtinModules);
/** A virtual module at the package root, so `lva-transfer/*` resolves as a self-reference through the exports map. */
const ENTRY_ID = `${ROOT}lva-bundle-size-entry.js`;

interface Sized {
  readonly label: string;
  readonly specifiers: readonly string[];
  readonly minified: number;
  readonly gzip: number;
  readonly modules: number;
  readonly nodeImports: readonly string[];
}

/** Entry module `export * as m0 from '<specifier>'; …`, plus a record of every Node built-in that anything imports. */
function entryPlugin(specifiers: readonly string[], nodeImports: string[]): Plugin {
  return {
    name: 'lva-bundle-size',
    enforce: 'pre',
    resolveId(id, importer) {
      if (id === ENTRY_ID) return ENTRY_ID;
      if (id.startsWith('node:') || BUILTINS.has(id.split('/')[0]!)) nodeImports.push(`${importer ?? '(entry)'} imports ${id}`);
      return null;
    },
    load(id) {
      return id === ENTRY_ID ? specifiers.map((s, i) => `export * as m${i} from '${s}';\n`).join('') : null;
    },
  };
}

async function measure(label: string, specifiers: readonly string[]): Promise<Sized> {
  const nodeImports: string[] = [];
  const out = (await build({
    configFile: false,
    root: ROOT,
    logLevel: 'silent',
    plugins: [entryPlugin(specifiers, nodeImports)],
    resolve: { conditions: ['source', ...defaultClientConditions] },
    build: {
      write: false,
      minify: true,
      target: 'es2022',
      lib: { entry: ENTRY_ID, formats: ['es'], fileName: 'entry' },
      // lib mode keeps whitespace in ES output by default (for pure annotations); measure fully minified code
      rolldownOptions: { external: (id) => PEERS.test(id), output: { minify: true } },
    },
  })) as Rolldown.RolldownOutput | Rolldown.RolldownOutput[];
  const chunks = (Array.isArray(out) ? out : [out]).flatMap((o) => o.output).filter((c): c is Rolldown.OutputChunk => c.type === 'chunk');
  const code = chunks.map((c) => c.code).join('\n');
  const modules = new Set(chunks.flatMap((c) => c.moduleIds)).size;
  for (const m of code.matchAll(/\bfrom\s*["'](node:[^"']+)["']|\bimport\(\s*["'](node:[^"']+)["']\)/g)) nodeImports.push(`output imports ${m[1] ?? m[2]}`);
  const bytes = Buffer.from(code);
  return { label, specifiers, minified: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length, modules, nodeImports };
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const results: Sized[] = [];
for (const e of ENTRIES) results.push(await measure(e.label, e.specifiers));

const vite = JSON.parse(readFileSync(new URL('../../node_modules/vite/package.json', import.meta.url), 'utf8')) as { version: string };
const table = [
  '| bundle | imports | minified | gzip | modules bundled | Node built-ins reached |',
  '| --- | --- | ---: | ---: | ---: | --- |',
  ...results.map((r) => `| ${r.label} | ${r.specifiers.map((s) => `\`${s}\``).join(' + ')} | ${kib(r.minified)} | ${kib(r.gzip)} | ${r.modules} | ${r.nodeImports.length === 0 ? 'none' : r.nodeImports.join('; ')} |`),
  '',
  `Measured by \`npx tsx examples/browser/bundle-size.ts\` (Vite ${vite.version}, ES module, minified, gzip level 9; ` +
    '`@tensorflow/*` and `onnxruntime-*` external; ts-pattern, @bufbuild/protobuf and onnx-buf bundled).',
].join('\n');
console.log(table);

if (process.argv.includes('--write')) {
  const text = readFileSync(README, 'utf8');
  const re = /(<!-- sizes:start -->\n)[\s\S]*?(<!-- sizes:end -->)/;
  if (!re.test(text)) throw new Error(`bundle-size: ${README} has no <!-- sizes:start --> … <!-- sizes:end --> block.`);
  writeFileSync(README, text.replace(re, `$1${table}\n$2`));
  console.log(`bundle-size: updated ${README}`);
}
const bad = results.filter((r) => r.nodeImports.length > 0);
if (bad.length > 0) {
  console.error(`bundle-size: Node built-ins reached from ${bad.map((r) => r.label).join(', ')}`);
  process.exitCode = 1;
}
