/** The page's status line: which backend runs and why, download progress, and errors. */
import type { Fallback } from '../lib/backends.ts';
import type { RuntimeInfo } from './tf-runtime.ts';

export interface StatusElements {
  backend: HTMLElement;
  /** Beside the backend's name: why the one before it in the order was passed over. */
  why: HTMLElement;
  fallbacks: HTMLElement;
  loading: HTMLElement;
  progress: HTMLProgressElement;
  error: HTMLElement;
}

const NAMES: Record<string, string> = { webgpu: 'WebGPU', webgl: 'WebGL', wasm: 'WASM', cpu: 'CPU' };

/** A skip reason that reads on its own: "WebGL here is …" as it is, "failed to initialise" as "WebGL: failed to initialise". */
function standalone(f: Fallback): string {
  const name = NAMES[f.name] ?? f.name;
  return f.reason.toLowerCase().includes(name.toLowerCase()) ? f.reason : `${name}: ${f.reason}`;
}

export class StatusLine {
  constructor(private readonly el: StatusElements) {}

  showBackend(info: RuntimeInfo): void {
    this.el.backend.textContent = info.label;
    this.el.backend.dataset.backend = info.name;
    // The nearest skip explains the choice ("WebGL here is a software renderer"); the list keeps the others.
    const nearest = info.fallbacks.at(-1);
    this.el.why.textContent = nearest ? ` — ${standalone(nearest)}` : '';
    this.el.why.hidden = !nearest;
    const notes = info.fallbacks.slice(0, -1).map((f) => `${f.name.toUpperCase()} skipped: ${f.reason}.`);
    if (info.note) notes.unshift(`${info.note.charAt(0).toUpperCase()}${info.note.slice(1)}.`);
    this.el.fallbacks.replaceChildren(
      ...notes.map((text) => Object.assign(document.createElement('li'), { textContent: text })),
    );
    this.el.fallbacks.hidden = notes.length === 0;
  }

  showProgress(fraction: number, text = 'Downloading the generator'): void {
    this.el.loading.hidden = false;
    this.el.progress.value = fraction;
    this.el.loading.querySelector('[data-text]')!.textContent = `${text}… ${Math.round(fraction * 100)}%`;
  }

  doneLoading(): void {
    this.el.loading.hidden = true;
  }

  /** A readable error; `hint` may hold a link (e.g. to retry on another backend). */
  showError(message: string, hint?: { text: string; href: string }): void {
    this.doneLoading();
    const parts: Node[] = [document.createTextNode(message)];
    if (hint) {
      const a = Object.assign(document.createElement('a'), { href: hint.href, textContent: hint.text });
      parts.push(document.createTextNode(' '), a);
    }
    this.el.error.replaceChildren(...parts);
    this.el.error.hidden = false;
  }

  clearError(): void {
    this.el.error.hidden = true;
    this.el.error.replaceChildren();
  }
}
