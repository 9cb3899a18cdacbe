/**
 * One `astro build` of the site, shared by every end-to-end file (and the web
 * benches): it goes to .cache/e2e-build-<hash>/, where <hash> is the hash of
 * everything the build reads, so a build is only made when those inputs
 * changed. Within one `vitest run` e2e/global-setup.ts makes (or finds) it
 * before the first file starts and hands it to all of them, so the files of
 * one run share one build even if the sources change under the run.
 *
 * Each user then serves its own copy (.cache/e2e-<name>/), which it may add
 * files to (the fine-tune test writes a test model into its copy), and which a
 * `npm start` or another file building at the same time cannot pull files out
 * from under.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');
const CACHE = join(ROOT, '.cache');

/** What `astro build` reads (node_modules through the lock file). */
const BUILD_INPUTS = ['src', 'public', 'astro.config.mjs', 'tsconfig.json', 'package.json', 'package-lock.json'];

/** Set by e2e/global-setup.ts for the test files of one run: the shared build's folder. */
export const SITE_BUILD_ENV = 'FACEGAN_E2E_SITE_BUILD';
/** Set instead when that build failed: its error, which each e2e file then reports rather than building again. */
export const SITE_BUILD_ERROR_ENV = 'FACEGAN_E2E_SITE_BUILD_ERROR';

const QUIET_ENV = { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' };

/** Where the copy of the build for user `name` goes. */
export const outDirFor = (name: string) => join(CACHE, `e2e-${name}`);

function listFiles(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => listFiles(join(path, name)));
}

/** Hash of the build's inputs: each file's path and bytes. */
export function buildInputsHash(): string {
  const hash = createHash('sha256');
  for (const file of BUILD_INPUTS.flatMap((p) => listFiles(join(ROOT, p)))) {
    hash.update(relative(ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: QUIET_ENV });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0 ? done(log) : fail(new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${log}`)),
    );
  });
}

const BUILD_PREFIX = 'e2e-build-';
const HOUR_MS = 3_600_000;

/** Marks a build as in use (see pruneBuilds). */
function touch(dir: string): string {
  const now = new Date();
  utimesSync(dir, now, now);
  return dir;
}

/** Remove other builds that no run has used for an hour, and half-builds as old. */
function pruneBuilds(keep: string): void {
  for (const name of existsSync(CACHE) ? readdirSync(CACHE) : []) {
    const path = join(CACHE, name);
    if (!name.startsWith(BUILD_PREFIX) || path === keep) continue;
    if (Date.now() - statSync(path).mtimeMs > HOUR_MS) rmSync(path, { recursive: true, force: true });
  }
}

/**
 * The shared build for the sources as they are now: found under .cache/ or
 * made there (`force`: made again). Built into a folder of its own and then
 * renamed into place, so a build that is there is complete.
 */
export async function sharedSiteBuild(force = false): Promise<string> {
  const dir = join(CACHE, BUILD_PREFIX + buildInputsHash());
  if (!force && existsSync(join(dir, 'index.html'))) return touch(dir);
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    await run(join(ROOT, 'node_modules/.bin/astro'), ['build', '--outDir', tmp]);
    if (force) rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another run made the same build meanwhile: use that one.
      if (!existsSync(join(dir, 'index.html'))) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  pruneBuilds(dir);
  return touch(dir);
}

/**
 * The site built (once per test run, see above) and copied into
 * outDirFor(name); the copy is only made again when the build changed.
 * `force` builds again even when a build of these sources exists. Returns the folder.
 */
export async function buildSite(name: string, force = false): Promise<string> {
  if (!force && process.env[SITE_BUILD_ERROR_ENV]) throw new Error(process.env[SITE_BUILD_ERROR_ENV]);
  const fromRun = force ? undefined : process.env[SITE_BUILD_ENV];
  const build = fromRun && existsSync(join(fromRun, 'index.html')) ? touch(fromRun) : await sharedSiteBuild(force);
  const outDir = outDirFor(name);
  const stamp = `${outDir}.build`;
  if (force || !existsSync(join(outDir, 'index.html')) || !existsSync(stamp) || readFileSync(stamp, 'utf8') !== build) {
    rmSync(stamp, { force: true });
    rmSync(outDir, { recursive: true, force: true });
    cpSync(build, outDir, { recursive: true });
    writeFileSync(stamp, build);
  }
  return outDir;
}
