/**
 * The browser demo (examples/browser) in a real headless Chromium: builds the page with Vite (or takes a prebuilt
 * dist from LVA_BROWSER_DIST), serves it on 127.0.0.1, clicks Adapt for the tfjs and the ONNX model, and checks that
 * held-out accuracy on the shifted digits rises above the pretrained model's. Saves a screenshot: to docs/demo.png
 * with UPDATE_SCREENSHOT=1 (the committed one), otherwise to the system's temp folder so test runs leave the tree clean.
 *
 * Needs Debian's Chromium (`apt-get install -y chromium`); without /usr/bin/chromium (or LVA_CHROMIUM) it skips and
 * says why.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

const ROOT = join(__dirname, '..', '..');
const CHROMIUM = process.env['LVA_CHROMIUM'] ?? '/usr/bin/chromium';
const SCREENSHOT = process.env['UPDATE_SCREENSHOT'] === '1' ? join(ROOT, 'docs', 'demo.png') : join(tmpdir(), 'lva-transfer-demo.png');
const KINDS = ['tfjs', 'onnx'] as const;

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`tests/browser/browser.test.ts skipped: no Chromium at ${CHROMIUM}. Install it with \`apt-get install -y chromium\` (or set LVA_CHROMIUM).`);
const describeInBrowser = haveChromium ? describe : describe.skip;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  // instantiateStreaming (tfjs and onnxruntime) insists on this type
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
};

/** A static file server for `dir` on 127.0.0.1 at a free port. */
async function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(dir, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

/** make-data.ts, then `vite build` into a fresh temporary folder. */
function buildPage(): { dist: string; cleanup: () => void } {
  const out = mkdtempSync(join(tmpdir(), 'lva-browser-'));
  const dist = join(out, 'dist');
  // jest's NODE_OPTIONS (--experimental-vm-modules) is not for these children
  const env = { ...process.env, NODE_OPTIONS: '' };
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, args, { cwd: ROOT, env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  };
  run(['--import', 'tsx', 'examples/browser/make-data.ts']);
  run([join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'examples/browser/vite.config.ts', '--outDir', dist, '--emptyOutDir', '--logLevel', 'warn']);
  return { dist, cleanup: () => rmSync(out, { recursive: true, force: true }) };
}

async function panelState(page: Page, kind: string): Promise<{ state: string; error: string | null; before: number; after: number; ms: number }> {
  return page.$eval(`section.panel[data-kind="${kind}"]`, (panel) => {
    const num = (sel: string) => Number(panel.querySelector(sel)?.getAttribute('data-value') ?? NaN);
    return {
      state: panel.getAttribute('data-state') ?? '',
      error: panel.getAttribute('data-error'),
      before: num('.acc-before'),
      after: num('.acc-after'),
      ms: num('.ms'),
    };
  });
}

/** Waits until every panel's data-state is one of `states` (or 'error', which fails with the page's message). */
async function waitForPanels(page: Page, states: readonly string[], timeout: number): Promise<void> {
  await page.waitForFunction(
    (want) => [...document.querySelectorAll('section.panel')].length === 2 && [...document.querySelectorAll('section.panel')].every((p) => [...want, 'error'].includes(p.getAttribute('data-state') ?? '')),
    states,
    { timeout, polling: 100 },
  );
  for (const kind of KINDS) {
    const s = await panelState(page, kind);
    if (s.state === 'error') throw new Error(`the ${kind} panel failed: ${s.error}`);
  }
}

describeInBrowser('browser demo (examples/browser) in headless Chromium', () => {
  let browser: Browser | undefined;
  let server: Server | undefined;
  let url = '';
  let cleanup = () => {};

  beforeAll(async () => {
    const prebuilt = process.env['LVA_BROWSER_DIST'];
    let dist: string;
    if (prebuilt) dist = prebuilt;
    else ({ dist, cleanup } = buildPage());
    ({ server, url } = await serve(dist));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    cleanup();
  });

  it('adapts the tfjs and the ONNX model in Web Workers and raises held-out accuracy on shifted digits', async () => {
    const page = await browser!.newPage({ viewport: { width: 1240, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));

    await page.goto(url);
    await waitForPanels(page, ['ready'], 40_000);
    const before = Object.fromEntries(await Promise.all(KINDS.map(async (k) => [k, await panelState(page, k)] as const)));
    // the ONNX file holds the tfjs model's weights: both score the held-out digits alike before adapting
    expect(Math.abs(before.tfjs!.before - before.onnx!.before)).toBeLessThanOrEqual(0.004);

    for (const kind of KINDS) await page.click(`section.panel[data-kind="${kind}"] button.adapt`);
    await waitForPanels(page, ['adapted'], 40_000);

    for (const kind of KINDS) {
      const s = await panelState(page, kind);
      console.log(`browser demo, ${kind}: held-out accuracy ${s.before.toFixed(3)} → ${s.after.toFixed(3)}, adaptation ${s.ms.toFixed(0)} ms`);
      expect(s.before).toBeGreaterThan(0.2);
      expect(s.after).toBeGreaterThan(s.before + 0.03);
      expect(s.ms).toBeGreaterThan(0);
    }
    expect(problems).toEqual([]);

    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.close();
  }, 90_000);
});
