/** The dependency direction: src/core is pure math and imports nothing from adapters, callbacks or any runtime. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const FORBIDDEN = [/@tensorflow/, /onnxruntime/, /onnx-buf/, /@bufbuild/, /\.\.\/adapters/, /\.\.\/callbacks/, /\.\.\/io/, /^node:/, /^fs$/, /^path$/];

describe('architecture', () => {
  const core = files(join(__dirname, '..', 'src', 'core'));
  it('finds the core sources', () => expect(core.length).toBeGreaterThan(5));
  it.each(core.map((f) => [f.split('src/')[1]!, f]))('%s imports only core modules and ts-pattern', (_name, file) => {
    const src = readFileSync(file, 'utf8');
    const specifiers = [...src.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);
    for (const s of specifiers) {
      expect(FORBIDDEN.some((re) => re.test(s)) ? `${s} (forbidden in core)` : s).toBe(s);
      expect(s.startsWith('./') || s === 'ts-pattern' ? s : `${s} (not a core module)`).toBe(s);
    }
  });
  it('the root entry exports only the core', () => {
    const src = readFileSync(join(__dirname, '..', 'src', 'index.ts'), 'utf8');
    const specifiers = [...src.matchAll(/from\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
    expect(specifiers).toEqual(['./core/index.js']);
  });
});
