// The training CLI as a user runs it: exit codes and the messages that go with them.
import { describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..');
function cli(...args: string[]) {
  return cliWithEnv(process.env, ...args);
}

/** Runs the CLI without blocking the test worker (a blocked worker misses its own runner's messages on a busy machine). */
function cliWithEnv(
  env: NodeJS.ProcessEnv,
  ...args: string[]
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'training/cli.ts', ...args],
      { cwd: root, encoding: 'utf8', timeout: 120_000, env },
      (error, out, err) => {
        done({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, out, err });
      },
    );
  });
}

const SWIFTSHADER = '/usr/lib/chromium/libvk_swiftshader.so';

describe('npm run train', () => {
  it('--summary prints the seed-classic counts of the write-up', async () => {
    const r = await cli('--summary', '--arch', 'seed-classic');
    expect(r.code).toBe(0);
    expect(r.out).toContain('Generator parameters: 34,031,363');
    expect(r.out).toContain('Discriminator parameters: 25,901,953');
    expect(r.out).toMatch(/g_dense1 \(Dense\)/);
  });

  it('--help lists the flags', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const flag of [
      '--data',
      '--arch',
      '--width',
      '--batch',
      '--steps',
      '--epochs',
      '--lr',
      '--seed',
      '--out',
      '--resume',
      '--backend',
      '--export',
      '--summary',
    ]) {
      expect(r.out).toContain(flag);
    }
  });

  it('a missing data folder exits 2 with one clear line', async () => {
    const r = await cli('--data', '/nonexistent/faces', '--steps', '1');
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain('data folder not found: /nonexistent/faces');
  });

  it('an empty data folder exits 2', async () => {
    const r = await cli('--data', mkdtempSync(join(tmpdir(), 'facegan-empty-')), '--steps', '1');
    expect(r.code).toBe(2);
    expect(r.err).toContain('no .jpg/.png/.webp images');
  });

  it('bad flags exit 2', async () => {
    expect((await cli('--arch', 'resnet')).code).toBe(2);
    expect((await cli('--batch', 'many')).err).toContain('--batch must be an integer');
    expect((await cli('--frobnicate')).code).toBe(2);
    expect((await cli('--backend', 'quantum', '--steps', '1')).code).toBe(2);
  });

  it('a quick run exports into its own folder and leaves the shipped weights alone', async () => {
    const shipped = readFileSync(join(root, 'public', 'models', 'manifest.json'), 'utf8');
    const out = mkdtempSync(join(tmpdir(), 'facegan-quick-'));
    const r = await cli(
      '--data',
      join(root, '..', 'shared', 'celeba', 'img_align_celeba'),
      '--limit',
      '8',
      '--width',
      '4',
      '--batch',
      '4',
      '--steps',
      '2',
      '--quiet',
      '--out',
      out,
    );
    expect(r.code).toBe(0);
    expect(existsSync(join(out, 'export', 'generator.json'))).toBe(true);
    expect(r.out).toContain(join(out, 'export'));
    expect(readFileSync(join(root, 'public', 'models', 'manifest.json'), 'utf8')).toBe(shipped);
  });

  it('--size 128 trains on photos large enough only, and a bad size exits 2', async () => {
    const out = mkdtempSync(join(tmpdir(), 'facegan-128-'));
    // The first files of the set are CelebA's half-size ones (89x109): too small for 128 px, never upsampled.
    const r = await cli(
      '--data',
      join(root, '..', 'shared', 'celeba', 'img_align_celeba'),
      '--limit',
      '40',
      '--size',
      '128',
      '--width',
      '4',
      '--batch',
      '2',
      '--steps',
      '1',
      '--quiet',
      '--no-export',
      '--out',
      out,
    );
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/data: (\d+) training images.*; (\d+) left out as smaller than 128 px/);
    expect(r.out).toContain('at 128 px');
    const [, kept, small] = /data: (\d+) training images.*; (\d+) left out/.exec(r.out)!.map(Number);
    expect(kept + small).toBe(40);
    expect(kept).toBeGreaterThan(0);
    expect((await cli('--size', '96')).err).toContain('--size must be one of 64, 128');
    expect((await cli('--size', '128', '--arch', 'seed-classic')).code).toBe(2);
  });

  it('--resume without a checkpoint exits 2', async () => {
    const r = await cli('--resume', '--out', mkdtempSync(join(tmpdir(), 'facegan-norun-')), '--steps', '1');
    expect(r.code).toBe(2);
    expect(r.err).toContain('no checkpoint');
  });

  it('names its backend and why in one line, and nothing else on stderr, even while Dawn probes a Vulkan driver', async (ctx) => {
    if (!existsSync(SWIFTSHADER)) ctx.skip(`no Vulkan driver to probe here (${SWIFTSHADER}, from Debian's chromium)`);
    // A Vulkan driver where the loader looks for one (SwiftShader's, standing in for a GPU's), and no desktop session.
    const share = mkdtempSync(join(tmpdir(), 'facegan-vulkan-'));
    mkdirSync(join(share, 'vulkan', 'icd.d'), { recursive: true });
    writeFileSync(
      join(share, 'vulkan', 'icd.d', 'swiftshader.json'),
      JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: SWIFTSHADER, api_version: '1.0.5' } }),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_DATA_DIRS: `${share}:/usr/share` };
    delete env.XDG_RUNTIME_DIR;
    delete env.VK_ICD_FILENAMES;
    const r = await cliWithEnv(
      env,
      '--data',
      join(root, '..', 'shared', 'celeba', 'img_align_celeba'),
      '--limit',
      '16',
      '--width',
      '4',
      '--batch',
      '4',
      '--steps',
      '1',
      '--no-export',
      '--quiet',
      '--out',
      mkdtempSync(join(tmpdir(), 'facegan-quiet-')),
    );
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).not.toMatch(/XDG_RUNTIME_DIR|error|tfjs-node for more details/i);
    const lines = r.out.split('\n').filter((l) => l.startsWith('backend:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^backend: \w+ \(.+\), the fastest available here\. Skipped .*webgpu: only a software adapter \(google swiftshader/,
    );
  });

  it('SIGTERM during training writes a checkpoint and exits 0 with a resume hint', async () => {
    const out = mkdtempSync(join(tmpdir(), 'facegan-sigterm-'));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'training/cli.ts',
        '--data',
        join(root, '..', 'shared', 'celeba', 'img_align_celeba'),
        '--limit',
        '16',
        '--width',
        '4',
        '--batch',
        '4',
        '--steps',
        '100000',
        '--log-every',
        '1',
        '--sample-every',
        '100000',
        '--checkpoint-every',
        '100000',
        '--no-export',
        '--quiet',
        '--out',
        out,
      ],
      { cwd: root },
    );
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    while (!existsSync(join(out, 'metrics.jsonl'))) await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(stdout).toMatch(/stopped at step \d+/);
    expect(stdout).toContain('--resume');
    expect(existsSync(join(out, 'checkpoint.bin'))).toBe(true);
  });
});
