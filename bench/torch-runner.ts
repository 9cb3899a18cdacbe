/**
 * The PyTorch side of the benchmark: one long-lived bench/torch_dcgan.py
 * process, asked for a few steps at a time so that the two trainers can be
 * timed alternately in one run.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'torch_dcgan.py');

/** Debian's python3-torch is installed for the system interpreter, which a pyenv or venv `python3` may hide. */
function pythonPath(): string {
  return process.env.FACEGAN_TORCH_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

export class TorchRunner {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private stderr = '';
  /** Set once the child cannot answer any more: it failed to start, or exited. */
  private failure: Error | null = null;
  private readonly failed: Promise<never>;
  version = '';
  /** Which path PyTorch's transposed convolutions take, and its memory layout (torch_dcgan.py's reply). */
  path = '';

  constructor() {
    const python = pythonPath();
    // OPENBLAS_CORETYPE=Haswell (set on this machine) would hold OpenBLAS to AVX2 and understate the sgemm peak.
    const env = { ...process.env };
    delete env.OPENBLAS_CORETYPE;
    // The same OpenMP wait policy as the native backend's oneDNN threads (training/native/addon.ts).
    env.OMP_WAIT_POLICY ??= 'passive';
    this.proc = spawn(python, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.proc.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.proc.stdin.on('error', () => {
      /* a dead child: reported through `failed` */
    });
    this.failed = new Promise<never>((_, reject) => {
      this.proc.once('error', (err) => reject(this.fail(`cannot run ${python}: ${err.message}`)));
      this.proc.once('exit', (code) => reject(this.fail(`PyTorch reference exited (${code}): ${this.reason()}`)));
    });
    this.failed.catch(() => {
      /* observed in run() */
    });
    this.lines = createInterface({ input: this.proc.stdout });
  }

  private fail(message: string): Error {
    this.failure ??= new Error(message);
    return this.failure;
  }

  /** Seconds that `steps` training steps took, at this size and precision (f32, or bf16 autocast). */
  async run(cmd: {
    width: number;
    batch: number;
    size: number;
    precision: 'f32' | 'bf16';
    steps: number;
  }): Promise<number> {
    if (this.failure) throw this.failure;
    const reply = Promise.race([new Promise<string>((resolve) => this.lines.once('line', resolve)), this.failed]);
    this.proc.stdin.write(`${JSON.stringify(cmd)}\n`);
    const parsed = JSON.parse(await reply) as { seconds: number; torch: string; path: string };
    this.version = parsed.torch;
    this.path = parsed.path;
    return parsed.seconds;
  }

  /** GFLOP/s of torch.matmul on n x n matrices (float32 or bf16) with PyTorch's 2 threads, best of `repeats`: the peak. */
  async sgemm(n = 2048, repeats = 5, dtype: 'f32' | 'bf16' = 'f32'): Promise<number> {
    if (this.failure) throw this.failure;
    const reply = Promise.race([new Promise<string>((resolve) => this.lines.once('line', resolve)), this.failed]);
    this.proc.stdin.write(`${JSON.stringify({ sgemm: n, repeats, dtype })}\n`);
    return (JSON.parse(await reply) as { gflops: number }).gflops;
  }

  /** The last line of the child's error output: "No module named 'torch'" and the like. */
  reason(): string {
    return this.stderr.trim().split('\n').pop() ?? 'no output';
  }

  close(): void {
    this.proc.stdin.end();
    this.proc.kill();
  }
}
