/**
 * Vite config of the browser demo (examples/browser). `npm run build:browser` writes dist/ here;
 * `npm run example:browser` builds and serves it on http://127.0.0.1:4173/.
 */
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // relative asset URLs: the built page works from any path
  base: './',
  // `source` first: `lva-transfer/*` resolves (as a self-reference through the package's exports) to src/*.ts
  resolve: {
    conditions: ['source', ...defaultClientConditions],
    // The ONNX adapter falls back to `import('onnxruntime-web')` when no `ort` is passed. The worker passes its own
    // wasm-only build, so point the fallback at that same module; otherwise the full build (and its 28 MB JSEP .wasm)
    // would be bundled as a chunk that never loads.
    alias: [{ find: /^onnxruntime-web$/, replacement: 'onnxruntime-web/wasm' }],
  },
  worker: {
    format: 'es',
    // expected here: that fallback import('onnxruntime-web') now names the module the worker imports statically
    rolldownOptions: { checks: { ineffectiveDynamicImport: false } },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // tfjs and onnxruntime-web are large by nature; they live in the workers' chunks
    chunkSizeWarningLimit: 4096,
    // the timings warning would only say that bundling the two workers is most of the build
    rolldownOptions: { checks: { pluginTimings: false } },
  },
  preview: { host: '127.0.0.1', port: 4173, strictPort: false },
});
