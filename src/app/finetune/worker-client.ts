/**
 * The page's side of the fine-tuning worker: requests as promises, training
 * events to a listener, and a clear error if the worker itself dies.
 */
import type { Reply, Request, TrainEvent, WorkerMessage } from '../../workers/finetune-protocol.ts';

type Pending = { resolve: (value: unknown) => void; reject: (err: Error) => void };

export class FinetuneClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  onEvent: (event: TrainEvent) => void = () => {};
  onCrash: (message: string) => void = () => {};

  constructor() {
    this.worker = new Worker(new URL('../../workers/finetune.worker.ts', import.meta.url), {
      type: 'module',
      name: 'finetune',
    });
    this.worker.onmessage = (ev: MessageEvent<WorkerMessage>) => this.receive(ev.data);
    this.worker.onerror = (ev) => this.crash(`The fine-tuning worker stopped: ${ev.message || 'it could not start'}`);
    this.worker.onmessageerror = () => this.crash('The fine-tuning worker sent a message the page could not read.');
  }

  private receive(msg: WorkerMessage): void {
    if (msg.id === undefined) {
      this.onEvent(msg.event);
      return;
    }
    const reply = msg as Reply;
    const p = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (reply.ok) p?.resolve(reply.value);
    else p?.reject(new Error(reply.error));
  }

  private crash(message: string): void {
    for (const p of this.pending.values()) p.reject(new Error(message));
    this.pending.clear();
    this.onCrash(message);
  }

  request<T>(req: Request, transfer: Transferable[] = []): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  terminate(): void {
    this.worker.terminate();
    this.crash('The fine-tuning worker was closed.');
  }
}
