// The training CLI as a user runs it: exit codes and the messages that go with them.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..');
function cli(...args: string[]) {
  return cliWithEnv(process.env, ...args);
}

function cliWithEnv(env: NodeJS.ProcessEnv, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'training/cli.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000, env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const SWIFTSHADER = '/usr/lib/chromium/libvk_swiftshader.so';

describe('npm run train', () => {
  it('--summary prints the seed-classic counts of the write-up', () => {
    const r = cli('--summary', '--arch', 'seed-classic');
    expect(r.code).toBe(0);
    expect(r.out).toContain('Generator parameters: 34,031,363');
    expect(r.out).toContain('Discriminator parameters: 25,901,953');
    expect(r.out).toMatch(/g_dense1 \(Dense\)/);
  });

  it('--help lists the flags', () => {
    const r = cli('--help');
    expect(r.code).toBe(0);
    for (const flag of ['--data', '--arch', '--width', '--batch', '--steps', '--epochs', '--lr', '--seed', '--out', '--resume', '--backend', '--export', '--summary']) {
      expect(r.out).toContain(flag);
    }
  });

  it('a missing data folder exits 2 with one clear line', () => {
    const r = cli('--data', '/nonexistent/faces', '--steps', '1');
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain('data folder not found: /nonexistent/faces');
  });

  it('an empty data folder exits 2', () => {
    const r = cli('--data', mkdtempSync(join(tmpdir(), 'facegan-empty-')), '--steps', '1');
    expect(r.code).toBe(2);
    expect(r.err).toContain('no .jpg/.png/.webp images');
  });

  it('bad flags exit 2', () => {
    expect(cli('--arch', 'resnet').code).toBe(2);
    expect(cli('--batch', 'many').err).toContain('--batch must be an integer');
    expect(cli('--frobnicate').code).toBe(2);
    expect(cli('--backend', 'quantum', '--steps', '1').code).toBe(2);
  });

  it('--resume without a checkpoint exits 2', () => {
    const r = cli('--resume', '--out', mkdtempSync(join(tmpdir(), 'facegan-norun-')), '--steps', '1');
    expect(r.code).toBe(2);
    expect(r.err).toContain('no checkpoint');
  });

  it('names its backend and why in one line, and nothing else on stderr, even while Dawn probes a Vulkan driver', (ctx) => {
    if (!existsSync(SWIFTSHADER)) ctx.skip(`no Vulkan driver to probe here (${SWIFTSHADER}, from Debian's chromium)`);
    // A Vulkan driver where the loader looks for one (SwiftShader's, standing in for a GPU's), and no desktop session.
    const share = mkdtempSync(join(tmpdir(), 'facegan-vulkan-'));
    mkdirSync(join(share, 'vulkan', 'icd.d'), { recursive: true });
    writeFileSync(join(share, 'vulkan', 'icd.d', 'swiftshader.json'), JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: SWIFTSHADER, api_version: '1.0.5' } }));
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_DATA_DIRS: `${share}:/usr/share` };
    delete env.XDG_RUNTIME_DIR;
    delete env.VK_ICD_FILENAMES;
    const r = cliWithEnv(env, '--data', join(root, '..', 'shared', 'celeba', 'img_align_celeba'), '--limit', '16', '--width', '4', '--batch', '4', '--steps', '1',
      '--no-export', '--quiet', '--out', mkdtempSync(join(tmpdir(), 'facegan-quiet-')));
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).not.toMatch(/XDG_RUNTIME_DIR|error|tfjs-node for more details/i);
    const lines = r.out.split('\n').filter((l) => l.startsWith('backend:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^backend: \w+ \(.+\), the fastest available here\. Skipped .*webgpu: only a software adapter \(google swiftshader/);
  });

  it('SIGTERM during training writes a checkpoint and exits 0 with a resume hint', async () => {
    const out = mkdtempSync(join(tmpdir(), 'facegan-sigterm-'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'training/cli.ts', '--data', join(root, '..', 'shared', 'celeba', 'img_align_celeba'),
      '--limit', '16', '--width', '4', '--batch', '4', '--steps', '100000', '--log-every', '1', '--sample-every', '100000', '--checkpoint-every', '100000', '--no-export', '--quiet', '--out', out], { cwd: root });
    let stdout = '';
    child.stdout.on('data', (d) => { stdout += d; });
    while (!existsSync(join(out, 'metrics.jsonl'))) await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(stdout).toMatch(/stopped at step \d+/);
    expect(stdout).toContain('--resume');
    expect(existsSync(join(out, 'checkpoint.bin'))).toBe(true);
  });
});
