/**
 * Shared end-to-end helpers: the site's build (one per test run, see
 * site-build.ts), served with `astro preview` on a free localhost port, and
 * the system Chromium (with software WebGL, so the WebGL path runs headless).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from './site-build.ts';

export { buildSite, outDirFor, ROOT } from './site-build.ts';
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const QUIET_ENV = { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' };

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
    } catch {
      /* not listening yet */
    }
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
    cwd: ROOT,
    env: QUIET_ENV,
    stdio: 'ignore',
  });
  await waitForHttp(origin, child, 60_000);
  return {
    origin,
    close: () =>
      new Promise((done) => {
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
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => problems.pageErrors.push(err.message));
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(`${origin}/`) && !/^(data|blob):/.test(url)) problems.foreignRequests.push(url);
  });
  return problems;
}
