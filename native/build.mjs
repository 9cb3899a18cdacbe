// Builds the native training kernels (run by `npm install` as postinstall).
// It never fails the install: where the addon cannot build (no compiler, no
// OpenBLAS, no Node headers) it writes why to native/build/UNAVAILABLE and the
// trainer falls back to the other backends, quoting that reason. Where oneDNN
// (Debian's libdnnl-dev) is installed its convolutions are compiled in; if that
// build fails, the addon is built again on OpenBLAS alone.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const buildDir = join(here, 'build');
const reasonFile = join(buildDir, 'UNAVAILABLE');

function findNodeGyp() {
  // npm tells lifecycle scripts where its bundled node-gyp is.
  const candidates = [process.env.npm_config_node_gyp];
  if (process.env.npm_execpath)
    candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(
    join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  );
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package; the other places may still have it
  }
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

/** Node's own headers, so that node-gyp never needs the network. */
function findNodeDir() {
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : null;
}

const addonPath = join(buildDir, 'Release', 'facegan_native.node');
/** Written after a build: which convolution library it compiled in ("onednn" or "openblas"). */
const flavourFile = join(buildDir, 'CONV_LIBRARY');

/** oneDNN's header and shared library, where Debian's libdnnl-dev puts them (or FACEGAN_NO_ONEDNN_BUILD to skip it). */
function haveOneDnn() {
  if (process.env.FACEGAN_NO_ONEDNN_BUILD) return false;
  const header = ['/usr/include/oneapi/dnnl/dnnl.hpp', '/usr/local/include/oneapi/dnnl/dnnl.hpp'].some((p) =>
    existsSync(p),
  );
  const lib = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/usr/local/lib'].some((d) =>
    existsSync(join(d, 'libdnnl.so')),
  );
  return header && lib;
}

/** Every later `npm install` runs this again: skip the compile when nothing changed since the last build. */
function upToDate() {
  if (!existsSync(addonPath) || existsSync(reasonFile)) return false;
  const sources = [
    join(here, 'binding.gyp'),
    fileURLToPath(import.meta.url),
    ...readdirSync(join(here, 'src')).map((f) => join(here, 'src', f)),
  ];
  const built = statSync(addonPath).mtimeMs;
  const flavour = existsSync(flavourFile) ? readFileSync(flavourFile, 'utf8').trim() : '';
  if (flavour !== (haveOneDnn() ? 'onednn' : 'openblas')) return false;
  return sources.every((f) => statSync(f).mtimeMs < built);
}

function fail(reason) {
  mkdirSync(buildDir, { recursive: true });
  // A stale addon from an earlier build must not outlive the reason it is unavailable.
  rmSync(addonPath, { force: true });
  writeFileSync(reasonFile, `${reason}\n`);
  console.warn(`facegan: native training backend not built: ${reason}`);
  process.exit(0);
}

function build() {
  if (process.env.FACEGAN_SKIP_NATIVE) fail('FACEGAN_SKIP_NATIVE is set');
  if (upToDate() && !process.argv.includes('--force')) {
    console.log('facegan: native training backend is up to date');
    return;
  }
  if (process.platform !== 'linux') fail(`native kernels are built for Linux only (this is ${process.platform})`);
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) fail('node-gyp was not found (it ships with npm)');
  const nodeDir = findNodeDir();
  const args = [nodeGyp, 'rebuild', '--jobs=2', ...(nodeDir ? [`--nodedir=${nodeDir}`] : [])];
  rmSync(reasonFile, { force: true });
  const gyp = (onednn) =>
    spawnSync(process.execPath, [...args, '--', `-Dfacegan_onednn=${onednn ? 1 : 0}`], { cwd: here, encoding: 'utf8' });
  let onednn = haveOneDnn();
  let run = gyp(onednn);
  if (run.status !== 0 && onednn) {
    console.warn('facegan: building the native kernels with oneDNN failed; building them on OpenBLAS alone');
    onednn = false;
    run = gyp(false);
  }
  if (run.status !== 0) {
    const log = `${run.stdout ?? ''}\n${run.stderr ?? ''}`;
    const hint = /cblas\.h|lopenblas/.test(log) ? ' (install Debian package libopenblas-dev)' : '';
    const lastError = log
      .split('\n')
      .filter((l) => /error/i.test(l))
      .slice(0, 3)
      .join(' | ');
    fail(`node-gyp failed${hint}: ${lastError || run.error?.message || `exit ${run.status}`}`);
  }
  writeFileSync(flavourFile, `${onednn ? 'onednn' : 'openblas'}\n`);
  console.log(`facegan: native training backend built (convolutions on ${onednn ? 'oneDNN' : 'OpenBLAS'})`);
}

build();
