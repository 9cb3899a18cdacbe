"""PyTorch reference for the training benchmark (bench/train-bench.ts).

The same DCGAN as src/lib/models.ts (arch 'dcgan'), the same step as
GanTrainer.step: D learns on real (label 1) and fake (label 0) batches, the
fakes made without a graph; then G learns through D, with D frozen. Loss is
BCE with logits, Adam(2e-4, betas (0.5, 0.999), eps 1e-8), BatchNorm
momentum 0.1 / eps 1e-5, two threads.

PyTorch's fastest correct path on this CPU: its ConvTranspose2d runs a slow
CPU kernel, so the generator's transposed convolutions are written as the
adjoint of conv2d (forward: conv2d's backward-data through
torch.ops.aten.convolution_backward; gradients: conv2d and conv2d's
backward-weights), which all run on oneDNN (mkldnn) like the discriminator's
conv2d. Same results as nn.ConvTranspose2d to 1e-6 (check with --check).
FACEGAN_TORCH_CONVT=native keeps nn.ConvTranspose2d.

Two precisions, each PyTorch's best on CPU: "f32", and "bf16", PyTorch's own
mixed precision: forward passes under torch.autocast("cpu", dtype=torch.bfloat16)
(convolutions and linear layers on bf16, batch norm and the losses in float32,
float32 master weights), with models and images in channels_last, the layout
oneDNN's bf16 kernels read without reorders. --check compares one bf16 step with
one f32 step from the same weights. In f32 the faster layout depends on the shapes
(channels_last was 1.6x faster at 64 px and slower at 128 px on a Zen 4 machine), so
the first command for an f32 configuration times both and keeps the faster; the
reply's "path" names the layout.

Sizes 64 and 128: at 128 px G has one more stage (w channels at 64 px) and D a
linear stride-2 layer to 16 channels first, as src/lib/models.ts builds them.

Protocol: one JSON line per stdin command.
  {"width": 32, "batch": 64, "steps": 3, "size": 64, "precision": "f32"}  ->  {"seconds": ..., "steps": 3}
  {"sgemm": 2048, "repeats": 5, "dtype": "f32"}  ->  {"gflops": ...}  (best of the repeats, 2 threads)
The first command for a configuration also builds it; the caller warms up.
"""
import os
import json
import sys
import time

import torch
from torch import nn

torch.set_num_threads(2)
Z_DIM = 100


class _AdjointConvT(torch.autograd.Function):
    """conv_transpose2d(x, w) as the adjoint of conv2d: all three products on conv2d's oneDNN kernels."""

    @staticmethod
    def forward(ctx, x, w, stride, padding, out_hw):
        ctx.dtypes = (x.dtype, w.dtype)
        # Autocast does not reach inside a custom Function: cast as it would cast conv2d.
        if torch.is_autocast_cpu_enabled():
            low = torch.get_autocast_cpu_dtype()
            x, w = x.to(low), w.to(low)
        ctx.save_for_backward(x, w)
        ctx.stride, ctx.padding = stride, padding
        y_like = x.new_empty((x.shape[0], w.shape[1], *out_hw))
        return torch.ops.aten.convolution_backward(
            x, y_like, w, None, [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1, [True, False, False])[0]

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        gy = gy.to(x.dtype)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = torch.nn.functional.conv2d(gy, w, None, ctx.stride, ctx.padding).to(ctx.dtypes[0])
        if ctx.needs_input_grad[1]:
            gw = torch.ops.aten.convolution_backward(
                x, gy, w, None, [ctx.stride] * 2, [ctx.padding] * 2, [1, 1], False, [0, 0], 1,
                [False, True, False])[1].to(ctx.dtypes[1])
        return gx, gw, None, None, None


class AdjointConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d (square kernel, no bias, no output padding) on conv2d's kernels."""

    def forward(self, x):
        s, p, k = self.stride[0], self.padding[0], self.kernel_size[0]
        out_hw = [(n - 1) * s - 2 * p + k for n in x.shape[2:]]
        return _AdjointConvT.apply(x, self.weight, s, p, out_hw)


ConvT = nn.ConvTranspose2d if os.environ.get("FACEGAN_TORCH_CONVT") == "native" else AdjointConvTranspose2d
PATH = ("nn.ConvTranspose2d" if ConvT is nn.ConvTranspose2d else "ConvTranspose2d as conv2d's adjoint") + \
    (", oneDNN" if torch.backends.mkldnn.is_available() else "")


def generator(w, size=64):
    def up(cin, cout):
        return [ConvT(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    extra = up(w, w) if size == 128 else []
    return nn.Sequential(
        nn.Linear(Z_DIM, 4 * 4 * 8 * w, bias=False), nn.Unflatten(1, (8 * w, 4, 4)), nn.BatchNorm2d(8 * w), nn.ReLU(),
        *up(8 * w, 4 * w), *up(4 * w, 2 * w), *up(2 * w, w), *extra,
        ConvT(w, 3, 4, 2, 1, bias=False), nn.Tanh())


def discriminator(w, size=64):
    def down(cin, cout):
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
    d_in = [nn.Conv2d(3, 16, 4, 2, 1, bias=False)] if size == 128 else []
    return nn.Sequential(
        *d_in, nn.Conv2d(16 if size == 128 else 3, w, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
        *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w),
        nn.Flatten(), nn.Linear(4 * 4 * 8 * w, 1))


PRECISIONS = ("f32", "bf16")


LAYOUTS = ("nchw", "channels_last")


class Trainer:
    def __init__(self, width, batch, size=64, precision="f32", layout=None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        torch.manual_seed(0)
        self.bf16 = precision == "bf16"
        # bf16 autocast is fastest in channels_last; in f32 it depends on the shapes (fastest_trainer picks).
        self.layout = layout or ("channels_last" if self.bf16 else "nchw")
        self.g, self.d = generator(width, size), discriminator(width, size)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
        self.loss = nn.BCEWithLogitsLoss()
        self.real = torch.rand(batch, 3, size, size) * 2 - 1
        self.z = torch.randn(batch, Z_DIM)
        self.ones, self.zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
        if self.layout == "channels_last":
            self.g.to(memory_format=torch.channels_last)
            self.d.to(memory_format=torch.channels_last)
            self.real = self.real.contiguous(memory_format=torch.channels_last)

    def forward(self):
        """Where the forward passes run: under bf16 autocast, or as they are."""
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def step(self):
        with torch.no_grad(), self.forward():
            fake = self.g(self.z)
        self.opt_d.zero_grad(set_to_none=True)
        with self.forward():
            d_loss = self.loss(self.d(self.real).float(), self.ones) + self.loss(self.d(fake).float(), self.zeros)
        d_loss.backward()
        self.opt_d.step()

        self.d.requires_grad_(False)  # D is frozen in G's step: no gradients for its weights
        self.opt_g.zero_grad(set_to_none=True)
        with self.forward():
            g_loss = self.loss(self.d(self.g(self.z)).float(), self.ones)
        g_loss.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)
        return d_loss.item(), g_loss.item()


def sgemm_gflops(n, repeats, dtype="f32"):
    """Best GFLOP/s of torch.matmul on n x n matrices, float32 or bf16 (bf16 dot products, f32 accumulation)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    if dtype == "bf16":
        a, b = a.bfloat16(), b.bfloat16()
    c = a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def check():
    """nn.ConvTranspose2d against the adjoint version: forward and both gradients."""
    torch.manual_seed(1)
    for cin, cout, hw in [(16, 8, 4), (5, 3, 7)]:
        ref = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        adj = AdjointConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        adj.weight.data.copy_(ref.weight.data)
        x = torch.randn(3, cin, hw, hw, requires_grad=True)
        gy = torch.randn(3, cout, 2 * hw, 2 * hw)
        out = []
        for m in (ref, adj):
            x.grad = None
            y = m(x)
            y.backward(gy)
            out.append((y.detach(), x.grad.clone(), m.weight.grad.clone()))
        errs = [float((a - b).abs().max() / (1 + b.abs().max())) for a, b in zip(out[1], out[0])]
        print(json.dumps({"cin": cin, "cout": cout, "hw": hw, "rel_err": errs}))
        assert max(errs) < 1e-5, errs
    check_bf16()


def check_bf16(tolerance=0.05):
    """One bf16 autocast step against one f32 step from the same weights and data: losses and G's output agree."""
    for size in (64, 128):
        f32, bf16 = Trainer(8, 8, size, "f32"), Trainer(8, 8, size, "bf16")
        losses = [f32.step(), bf16.step()]
        with torch.no_grad():
            f32.g.eval(), bf16.g.eval()
            out = [f32.g(f32.z), bf16.g(bf16.z).float()]
        loss_err = max(abs(a - b) / max(abs(a), 1e-3) for a, b in zip(*losses))
        out_err = float((out[0] - out[1]).abs().max())
        print(json.dumps({"size": size, "precision": "bf16 vs f32", "loss_rel_err": loss_err, "g_out_abs_err": out_err}))
        assert loss_err < tolerance and out_err < 2 * tolerance, (loss_err, out_err)


def fastest_trainer(width, batch, size, precision, steps=2, rounds=3):
    """PyTorch at its best: in f32, the memory layout (NCHW or channels_last) whose step is faster here.

    The layouts are timed in alternation, `rounds` times each, and each keeps its fastest round: a single timing
    on a shared machine picked the slower layout in some runs."""
    if precision != "f32":
        return Trainer(width, batch, size, precision)
    trainers = [Trainer(width, batch, size, precision, layout) for layout in LAYOUTS]
    for trainer in trainers:
        trainer.step()  # warm-up
    best = [float("inf")] * len(trainers)
    for _ in range(rounds):
        for i, trainer in enumerate(trainers):
            start = time.perf_counter()
            for _ in range(steps):
                trainer.step()
            best[i] = min(best[i], time.perf_counter() - start)
    return trainers[best.index(min(best))]


def main():
    if "--check" in sys.argv:
        check()
        return
    trainers = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        if "sgemm" in cmd:
            gflops = sgemm_gflops(cmd["sgemm"], cmd.get("repeats", 5), cmd.get("dtype", "f32"))
            print(json.dumps({"gflops": gflops, "threads": torch.get_num_threads()}), flush=True)
            continue
        key = (cmd["width"], cmd["batch"], cmd.get("size", 64), cmd.get("precision", "f32"))
        if key not in trainers:
            trainers[key] = fastest_trainer(*key)
        trainer = trainers[key]
        start = time.perf_counter()
        for _ in range(cmd["steps"]):
            trainer.step()
        seconds = time.perf_counter() - start
        path = f"{PATH}, {trainer.layout}"
        print(json.dumps({"seconds": seconds, "steps": cmd["steps"], "torch": torch.__version__, "path": path}), flush=True)


if __name__ == "__main__":
    main()
