// The training benchmark as a user runs it: one JSON line per size, width and precision, and a PyTorch peer
// whose bf16 mixed precision is checked against its float32.
import { describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..');

function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { cwd: root, encoding: 'utf8', timeout: 180_000 }, (error, out, err) =>
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out, err }),
    );
  });
}

/** Debian's python3-torch, where it is installed (CI does not install it: the bench's peer is optional). */
function hasTorch(): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('npm run bench', () => {
  it('measures 64 px and 128 px configurations, each line naming its precision', async () => {
    const args = ['--import', 'tsx', 'bench/train-bench.ts', '--width', '4', '--batch', '2', '--steps', '1'];
    const r = await run(process.execPath, [...args, '--no-torch', '--precision', 'f32']);
    expect(r.code).toBe(0);
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.size, l.width, l.precision])).toEqual([
      [64, 4, 'f32'],
      [128, 4, 'f32'],
    ]);
    for (const l of lines) {
      expect(l.images_per_s).toBeGreaterThan(0);
      expect(l.torch).toMatch(/^unavailable: disabled with --no-torch/);
    }
    const bad = await run(process.execPath, [...args, '--no-torch', '--precision', 'fp8']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('--precision: f32 or bf16, got "fp8"');
  });

  it.runIf(hasTorch())("PyTorch's bf16 autocast step agrees with its f32 step, at 64 and 128 px", async () => {
    const r = await run('/usr/bin/python3', ['bench/torch_dcgan.py', '--check']);
    expect(r.err).toBe('');
    const checks = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { size?: number; loss_rel_err?: number });
    expect(checks.filter((c) => c.size).map((c) => c.size)).toEqual([64, 128]);
    expect(r.code).toBe(0);
  });
});
