/**
 * The worker side of the page ⇄ worker protocol. Typed against the root tsconfig's DOM lib (the WebWorker lib
 * conflicts with it), so `self` is narrowed to the two members a dedicated worker uses.
 */
import type { FromWorker, ToWorker } from './data.js';

interface WorkerScope {
  postMessage(message: FromWorker): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<ToWorker>) => void): void;
}

const scope = self as unknown as WorkerScope;

export function post(message: FromWorker): void {
  scope.postMessage(message);
}

/** Runs `handle` for each message in turn (a second Adapt click waits for the first), reporting errors to the page. */
export function serve(handle: (message: ToWorker) => Promise<void>): void {
  let queue = Promise.resolve();
  scope.addEventListener('message', (event) => {
    queue = queue.then(() => handle(event.data)).catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }));
  });
}
