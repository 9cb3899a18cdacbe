/**
 * Shared end-to-end helpers: build the site when its sources changed, serve
 * the build with `astro preview` on a free localhost port, and launch the
 * system Chromium (with software WebGL, so the WebGL path runs headless).
 *
 * Each test file builds into its own folder under .cache/ (not dist/), so a
 * `npm start` or another test file building at the same time cannot pull
 * files out from under it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const ROOT = resolve(import.meta.dirname, '..');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Where the build for test file `name` goes. */
export const outDirFor = (name: string) => join(ROOT, '.cache', `e2e-${name}`);

const QUIET_ENV = { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' };

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return readdirSync(path).reduce((m, name) => Math.max(m, newestMtime(join(path, name))), st.mtimeMs);
}

/** True when the build in `outDir` is missing or older than anything the build reads. */
export function siteIsStale(outDir: string): boolean {
  const stamp = join(outDir, 'index.html');
  const built = existsSync(stamp) ? statSync(stamp).mtimeMs : 0;
  const inputs = ['src', 'public', 'astro.config.mjs', 'package-lock.json'].map((p) => newestMtime(join(ROOT, p)));
  return Math.max(...inputs) > built;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: QUIET_ENV });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    child.on('error', fail);
    child.on('close', (code) => (code === 0 ? done(log) : fail(new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${log}`))));
  });
}

/** `astro build` into outDirFor(name); skipped when that build is up to date (unless `force`). Returns the folder. */
export async function buildSite(name: string, force = false): Promise<string> {
  const outDir = outDirFor(name);
  if (force || siteIsStale(outDir)) await run(join(ROOT, 'node_modules/.bin/astro'), ['build', '--outDir', outDir]);
  return outDir;
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => done(port));
    });
  });
}

export interface Server {
  /** e.g. http://127.0.0.1:4321 (no trailing slash). */
  origin: string;
  close(): Promise<void>;
}

async function waitForHttp(origin: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`astro preview exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${origin}/`)).ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`astro preview did not answer at ${origin} within ${timeoutMs} ms`);
}

/** Serve a build (from buildSite) exactly as `npm start` does (same headers), on a free port. */
export async function startPreview(outDir: string): Promise<Server> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const args = ['preview', '--outDir', outDir, '--host', '127.0.0.1', '--port', String(port)];
  const child = spawn(join(ROOT, 'node_modules/.bin/astro'), args, {
    cwd: ROOT, env: QUIET_ENV, stdio: 'ignore',
  });
  await waitForHttp(origin, child, 60_000);
  return {
    origin,
    close: () => new Promise((done) => {
      if (child.exitCode !== null) return done();
      child.once('exit', () => done());
      child.kill('SIGTERM');
    }),
  };
}

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // WebGL through ANGLE's software renderer: there is no GPU in CI.
  '--use-gl=angle',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--ignore-gpu-blocklist',
];

/**
 * WebGPU in headless Chromium: its adapter is SwiftShader's (a software
 * "fallback adapter"), which the site skips unless forced (`?backend=webgpu`)
 * or allowed (`?tfjsflags=SOFTWARE_WEBGPU_ENABLED:true`, standing in for a GPU).
 * Without this flag Chromium on Linux exposes navigator.gpu but no adapter.
 */
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu'];

/** Headless system Chromium; `extraArgs` e.g. ['--disable-webgl'] to see a page without a GPU path, or WEBGPU_ARGS. */
export function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/** What went wrong on a page: console errors, uncaught exceptions, requests to other origins. */
export interface PageProblems {
  consoleErrors: string[];
  pageErrors: string[];
  foreignRequests: string[];
}

/** Start recording `page`'s problems; requests outside `origin` (and data:/blob:) count as foreign. */
export function watchPage(page: Page, origin: string): PageProblems {
  const problems: PageProblems = { consoleErrors: [], pageErrors: [], foreignRequests: [] };
  page.on('console', (msg) => { if (msg.type() === 'error') problems.consoleErrors.push(msg.text()); });
  page.on('pageerror', (err) => problems.pageErrors.push(err.message));
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(`${origin}/`) && !/^(data|blob):/.test(url)) problems.foreignRequests.push(url);
  });
  return problems;
}
