/**
 * The page: draws the target digits, starts one worker per model kind, and shows held-out accuracy and example
 * predictions before and after Adapt. All model work happens in the workers; this thread only draws.
 *
 * Each panel exposes its state for tests: `data-state` (loading | ready | adapting | adapted | error) on the panel,
 * and `data-value` (a number) on its `.acc-before`, `.acc-after` and `.ms` elements.
 */
import { decodeDigits, PIXELS, type DemoData, type Digits, type FromWorker, type ModelKind, type Scored, type ToWorker } from './data.js';

/** Held-out digits shown with their predictions. */
const EXAMPLES = 14;

const PANELS: Record<ModelKind, { title: string; api: string; worker: () => Worker }> = {
  tfjs: {
    title: 'TensorFlow.js',
    api: 'adaptModel(model, x, y) from lva-transfer/tfjs',
    worker: () => new Worker(new URL('./tfjs-worker.ts', import.meta.url), { type: 'module', name: 'lva-tfjs' }),
  },
  onnx: {
    title: 'ONNX',
    api: 'adaptOnnxModel(bytes, { x, y }) from lva-transfer/onnx',
    worker: () => new Worker(new URL('./onnx-worker.ts', import.meta.url), { type: 'module', name: 'lva-onnx' }),
  },
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function digitCanvas(digits: Digits, i: number, scale: number): HTMLCanvasElement {
  const canvas = el('canvas', { width: '28', height: '28' });
  canvas.style.width = canvas.style.height = `${28 * scale}px`;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(28, 28);
  for (let p = 0; p < PIXELS; p++) {
    const v = 255 - Math.round(255 * digits.images[i * PIXELS + p]!);
    img.data.set([v, v, v, 255], 4 * p);
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

function setValue(node: Element, value: number, text: string): void {
  node.setAttribute('data-value', String(value));
  node.textContent = text;
}

/** One model kind: its card, its worker, and the Adapt button. */
function mountPanel(kind: ModelKind, data: DemoData, target: Digits, heldOut: Digits, host: HTMLElement): void {
  const spec = PANELS[kind];
  const button = el('button', { type: 'button', class: 'adapt', disabled: '' }, 'Adapt');
  const progress = el('progress', { max: '1' });
  const status = el('span', { class: 'status' }, 'loading…');
  const runtime = el('span', { class: 'runtime' });
  const accBefore = el('td', { class: 'acc-before' }, '…');
  const accAfter = el('td', { class: 'acc-after' }, '–');
  const ms = el('td', { class: 'ms' }, '–');
  const detail = el('td', { class: 'detail' }, '–');
  const examples = el('div', { class: 'digits examples' });
  const panel = el(
    'section',
    { class: 'card panel', 'data-kind': kind, 'data-state': 'loading' },
    el('h2', {}, spec.title, ' ', runtime),
    el('p', { class: 'api' }, el('code', {}, spec.api)),
    el('div', { class: 'controls' }, button, el('div', { class: 'progress' }, progress, status)),
    el(
      'table',
      {},
      el('tr', {}, el('th', {}, `Held-out accuracy (${heldOut.n} shifted digits), pretrained`), accBefore),
      el('tr', {}, el('th', {}, 'after Adapt'), accAfter),
      el('tr', {}, el('th', {}, `Adaptation time (${target.n} target digits)`), ms),
      el('tr', {}, el('th', {}, 'Outcome'), detail),
    ),
    el('h3', {}, `First ${EXAMPLES} held-out digits: prediction before → after (`, el('span', { class: 'pred right' }, 'right'), ', ', el('span', { class: 'pred wrong' }, 'wrong'), ')'),
    examples,
  );
  host.append(panel);

  const slots: { before: HTMLElement; after: HTMLElement }[] = [];
  for (let i = 0; i < Math.min(EXAMPLES, heldOut.n); i++) {
    const before = el('span', { class: 'pred' }, '·'), after = el('span', { class: 'pred' }, '·');
    slots.push({ before, after });
    examples.append(el('figure', {}, digitCanvas(heldOut, i, 2), el('figcaption', {}, before, ' → ', after)));
  }
  const showPredictions = (scored: Scored, which: 'before' | 'after') => {
    slots.forEach((slot, i) => {
      const p = scored.predicted[i]!;
      slot[which].textContent = String(p);
      slot[which].className = `pred ${p === heldOut.labels[i] ? 'right' : 'wrong'}`;
    });
  };

  let started = 0;
  const setProgress = (label: string, done: number, total: number) => {
    if (total > 0) progress.value = done / total;
    else progress.removeAttribute('value');
    status.textContent = total > 0 ? `${label}: ${done} / ${total}` : `${label}…`;
  };
  const worker = spec.worker();
  worker.addEventListener('message', (event: MessageEvent<FromWorker>) => {
    const m = event.data;
    switch (m.type) {
      case 'progress':
        setProgress(m.label, m.done, m.total);
        break;
      case 'ready':
        runtime.textContent = m.runtime;
        setValue(accBefore, m.before.accuracy, pct(m.before.accuracy));
        showPredictions(m.before, 'before');
        progress.value = 0;
        status.textContent = 'ready';
        panel.dataset['state'] = 'ready';
        button.disabled = false;
        break;
      case 'adapted':
        setValue(accAfter, m.after.accuracy, pct(m.after.accuracy));
        setValue(ms, m.ms, `${m.ms.toFixed(0)} ms`);
        detail.textContent = `${m.outcome}; λ = ${m.lambda === null ? '–' : m.lambda.toPrecision(3)} (${m.rows} rows)`;
        showPredictions(m.after, 'after');
        progress.value = 1;
        status.textContent = `done in ${((performance.now() - started) / 1000).toFixed(1)} s (adaptation and scoring)`;
        panel.dataset['state'] = 'adapted';
        button.disabled = false;
        break;
      case 'error':
        status.textContent = m.message;
        panel.dataset['state'] = 'error';
        panel.dataset['error'] = m.message;
        button.disabled = false;
        break;
    }
  });
  worker.addEventListener('error', (e) => {
    status.textContent = `worker failed: ${e.message}`;
    panel.dataset['state'] = 'error';
    panel.dataset['error'] = e.message;
  });
  button.addEventListener('click', () => {
    button.disabled = true;
    panel.dataset['state'] = 'adapting';
    // every Adapt starts again from the pretrained model: clear the previous run's results
    for (const node of [accAfter, ms]) {
      node.removeAttribute('data-value');
      node.textContent = '…';
    }
    detail.textContent = '…';
    for (const slot of slots) {
      slot.after.textContent = '·';
      slot.after.className = 'pred';
    }
    started = performance.now();
    worker.postMessage({ type: 'adapt' } satisfies ToWorker);
  });
  const init: ToWorker = {
    type: 'init',
    target,
    heldOut,
    model: kind === 'tfjs' ? data.model : null,
    onnxUrl: kind === 'onnx' ? new URL('mnist-mlp-linear.onnx', document.baseURI).href : null,
  };
  worker.postMessage(init);
}

/** Frames per second of this thread, to show that it stays responsive while the workers compute. */
function heartbeat(node: HTMLElement): void {
  let frames = 0, since = performance.now();
  const tick = (now: number) => {
    frames++;
    if (now - since >= 500) {
      node.textContent = `Main thread drawing ${Math.round((1000 * frames) / (now - since))} frames/s`;
      frames = 0;
      since = now;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

async function main(): Promise<void> {
  heartbeat(document.getElementById('heartbeat')!);
  const response = await fetch(new URL('mnist-shift3.json', document.baseURI));
  if (!response.ok) throw new Error(`GET mnist-shift3.json answered ${response.status}; run \`npm run build:browser\` (it writes the data with make-data.ts).`);
  const data = (await response.json()) as DemoData;
  const target = decodeDigits(data.target), heldOut = decodeDigits(data.heldOut);
  document.getElementById('shift')!.textContent = data.shift;
  document.getElementById('n-target')!.textContent = String(target.n);
  document.getElementById('n-held-out')!.textContent = String(heldOut.n);
  const grid = document.getElementById('target-grid')!;
  for (let i = 0; i < target.n; i++) grid.append(el('figure', {}, digitCanvas(target, i, 1.5), el('figcaption', {}, String(target.labels[i]))));
  const panels = document.getElementById('panels')!;
  mountPanel('tfjs', data, target, heldOut, panels);
  mountPanel('onnx', data, target, heldOut, panels);
}

main().catch((e: unknown) => {
  document.body.dataset['error'] = String(e);
  document.getElementById('panels')!.append(el('p', { class: 'fatal' }, String(e)));
});
