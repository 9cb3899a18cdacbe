/**
 * The fine-tuned generator the home page opens (`/?model=tuned`), kept in
 * this browser's IndexedDB as the same zip the fine-tune page downloads
 * (src/lib/model-bundle.ts); nothing is uploaded. Also what a tuned model's
 * parent is: the site's generator it was tuned from, named and hashed.
 */
import { shardPaths, weightsSha256 } from '../lib/directions.ts';
import type { ParentModel } from '../lib/model-bundle.ts';

const DB_NAME = 'facegan-tuned';
const STORE = 'bundles';
/** One model at a time: the one "Open on the home page" stored last. */
const KEY = 'home';

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function openDb(): Promise<IDBDatabase> {
  const req = indexedDB.open(DB_NAME, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(STORE);
  return request(req).catch((err: unknown) => {
    throw new Error(`this browser's storage (IndexedDB) is not available: ${err instanceof Error ? err.message : err}`);
  });
}

async function withStore<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openDb();
  try {
    const tx = db.transaction(STORE, mode);
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    });
    // Written only once the transaction commits, not when the request succeeds.
    const [result] = await Promise.all([request(work(tx.objectStore(STORE))), done]);
    return result;
  } finally {
    db.close();
  }
}

/** Keep a tuned model's zip for the home page, replacing the one kept before. */
export async function storeTunedBundle(bytes: Uint8Array): Promise<void> {
  await withStore('readwrite', (s) => s.put(bytes, KEY));
}

/** The kept zip, or null when this browser keeps none. */
export async function loadTunedBundle(): Promise<Uint8Array | null> {
  const value = await withStore('readonly', (s) => s.get(KEY) as IDBRequest<Uint8Array | undefined>);
  return value instanceof Uint8Array ? value : null;
}

async function fetchOk(url: string): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res;
}

/** The site's generator under `modelBase` (e.g. /models/) as a tuned model's parent: its manifest's name, its hash. */
export async function describeParent(modelBase: string): Promise<ParentModel> {
  const url = `${modelBase}generator.json`;
  const modelJson = (await (await fetchOk(url)).json()) as { weightsManifest?: { paths: string[] }[] };
  const base = new URL(url, location.href);
  const shards = await Promise.all(
    shardPaths(modelJson).map(async (p) => new Uint8Array(await (await fetchOk(new URL(p, base).href)).arrayBuffer())),
  );
  const manifest = await fetch(`${modelBase}manifest.json`)
    .then((r) => (r.ok ? (r.json() as Promise<{ name?: unknown }>) : null))
    .catch(() => null);
  const name = typeof manifest?.name === 'string' ? manifest.name : url;
  return { name, url, weightsSha256: await weightsSha256(shards) };
}
