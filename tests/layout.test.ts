// Imports go one way, and the layout shows which: src/lib (isomorphic) <- src/browser (shared browser code)
// <- src/workers <- src/app (page scripts) <- src/pages; training (Node) uses src/lib only. Read from the
// import statements themselves (static, `export ... from`, side-effect and dynamic `import()`), so a new
// import that points back up fails here, not in review. A worker started with `new Worker(new URL(...))`
// is an entry of its own, not an import, and is not counted.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

const STATIC =
  /^\s*(?:import|export)\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\}|[\w$]+(?:\s*,\s*(?:\{[^}]*\}|\*\s+as\s+[\w$]+))?)\s+from\s*['"]([^'"]+)['"]/gm;
const SIDE_EFFECT = /^\s*import\s*['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

interface Edge {
  from: string;
  to: string;
}

/** Every relative import of src/**\/*.{ts,astro} and training/**\/*.ts, as repository paths with '/'. */
function imports(): Edge[] {
  const files = ['src', 'training']
    .flatMap((d) => readdirSync(join(ROOT, d), { recursive: true, encoding: 'utf8' }).map((f) => join(d, f)))
    .filter((f) => /\.(ts|astro)$/.test(f));
  const posix = (p: string) => p.split(sep).join('/');
  return files.flatMap((file) => {
    // Comments may mention imports; block comments and whole-line // comments are dropped (URLs in strings stay).
    const text = readFileSync(join(ROOT, file), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    return [STATIC, SIDE_EFFECT, DYNAMIC]
      .flatMap((re) => [...text.matchAll(re)].map((m) => m[1]))
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => ({
        from: posix(file),
        to: posix(relative(ROOT, resolve(ROOT, dirname(file), spec.replace(/\?.*$/, '')))),
      }));
  });
}

/** The area a file belongs to: src/<folder> (src/app/finetune is src/app), or training. */
const area = (path: string) => (path.startsWith('src/') ? path.split('/').slice(0, 2).join('/') : path.split('/')[0]);
const folder = (path: string) => path.slice(0, path.lastIndexOf('/'));
const within = (inner: string, outer: string) => inner === outer || inner.startsWith(`${outer}/`);

/** Cycles between nodes (`nodeOf` maps a file to its node), each as "a -> b -> a" with one import per hop. */
function cycles(
  edges: Edge[],
  nodeOf: (path: string) => string,
  ignore: (a: string, b: string) => boolean = () => false,
): string[] {
  const graph = new Map<string, Map<string, Edge>>();
  for (const e of edges) {
    const [a, b] = [nodeOf(e.from), nodeOf(e.to)];
    if (a === b || ignore(a, b)) continue;
    if (!graph.has(a)) graph.set(a, new Map());
    if (!graph.get(a)!.has(b)) graph.get(a)!.set(b, e);
  }
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    path.push(n);
    for (const m of graph.get(n)?.keys() ?? []) {
      if (state.get(m) === 'open') {
        const loop = [...path.slice(path.indexOf(m)), m];
        const via = loop.slice(1).map((to, i) => {
          const e = graph.get(loop[i])!.get(to)!;
          return `${e.from} imports ${e.to}`;
        });
        found.push(`${loop.join(' -> ')} (${via.join('; ')})`);
      } else if (!state.has(m)) visit(m);
    }
    path.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

/** Imports from `from` into any of `banned`, as "file imports file". */
function reaching(edges: Edge[], from: string, banned: string[]): string[] {
  return edges
    .filter((e) => within(e.from, from) && banned.some((b) => within(e.to, b)))
    .map((e) => `${e.from} imports ${e.to}`);
}

describe('layout', () => {
  const edges = imports();

  it('reads the imports it checks (static, type-only, side-effect and dynamic), and each names a file that exists', () => {
    const has = (from: string, to: string) => edges.some((e) => e.from === from && e.to === to);
    expect(has('src/workers/finetune.worker.ts', 'src/lib/finetune.ts')).toBe(true);
    expect(has('src/workers/finetune-protocol.ts', 'src/lib/backends.ts')).toBe(true); // import type
    expect(has('src/workers/finetune.worker.ts', 'src/browser/face-identity.ts')).toBe(true); // import()
    expect(has('src/pages/finetune.astro', 'src/app/finetune/finetune-page.ts')).toBe(true); // import '...'
    expect(edges.length).toBeGreaterThan(200);
    expect(edges.filter((e) => !existsSync(join(ROOT, e.to))).map((e) => `${e.from} imports missing ${e.to}`)).toEqual(
      [],
    );
  });

  it('has no cycle between areas (src/lib, src/browser, src/workers, src/app, src/components, src/pages, training)', () => {
    expect(cycles(edges, area)).toEqual([]);
  });

  it('has no cycle between folders (a folder and its own subfolders aside)', () => {
    expect(cycles(edges, folder, (a, b) => within(a, b) || within(b, a))).toEqual([]);
  });

  it('keeps src/lib isomorphic and self-contained', () => {
    expect(
      reaching(edges, 'src/lib', ['src/app', 'src/components', 'src/workers', 'src/browser', 'src/pages', 'training']),
    ).toEqual([]);
  });

  it('keeps the shared browser code free of pages and workers', () => {
    expect(
      reaching(edges, 'src/browser', ['src/app', 'src/components', 'src/workers', 'src/pages', 'training']),
    ).toEqual([]);
  });

  it('keeps page scripts and workers out of src/components (.astro components and their build-time data)', () => {
    expect(reaching(edges, 'src/app', ['src/components', 'src/pages'])).toEqual([]);
    expect(reaching(edges, 'src/workers', ['src/app', 'src/components', 'src/pages'])).toEqual([]);
  });

  it('lets training use src/lib only, never the site', () => {
    expect(
      reaching(edges, 'training', ['src/app', 'src/components', 'src/workers', 'src/browser', 'src/pages']),
    ).toEqual([]);
  });
});
