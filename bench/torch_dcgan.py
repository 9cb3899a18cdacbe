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

Protocol: one JSON line per stdin command.
  {"width": 32, "batch": 64, "steps": 3}  ->  {"seconds": ..., "steps": 3}
  {"sgemm": 2048, "repeats": 5}           ->  {"gflops": ...}  (best of the repeats, 2 threads)
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
        ctx.save_for_backward(x, w)
        ctx.stride, ctx.padding = stride, padding
        y_like = x.new_empty((x.shape[0], w.shape[1], *out_hw))
        return torch.ops.aten.convolution_backward(
            x, y_like, w, None, [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1, [True, False, False])[0]

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = torch.nn.functional.conv2d(gy, w, None, ctx.stride, ctx.padding)
        if ctx.needs_input_grad[1]:
            gw = torch.ops.aten.convolution_backward(
                x, gy, w, None, [ctx.stride] * 2, [ctx.padding] * 2, [1, 1], False, [0, 0], 1,
                [False, True, False])[1]
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


def generator(w):
    def up(cin, cout):
        return [ConvT(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(
        nn.Linear(Z_DIM, 4 * 4 * 8 * w, bias=False), nn.Unflatten(1, (8 * w, 4, 4)), nn.BatchNorm2d(8 * w), nn.ReLU(),
        *up(8 * w, 4 * w), *up(4 * w, 2 * w), *up(2 * w, w),
        ConvT(w, 3, 4, 2, 1, bias=False), nn.Tanh())


def discriminator(w):
    def down(cin, cout):
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
    return nn.Sequential(
        nn.Conv2d(3, w, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
        *down(w, 2 * w), *down(2 * w, 4 * w), *down(4 * w, 8 * w),
        nn.Flatten(), nn.Linear(4 * 4 * 8 * w, 1))


class Trainer:
    def __init__(self, width, batch):
        torch.manual_seed(0)
        self.g, self.d = generator(width), discriminator(width)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
        self.loss = nn.BCEWithLogitsLoss()
        self.real = torch.rand(batch, 3, 64, 64) * 2 - 1
        self.z = torch.randn(batch, Z_DIM)
        self.ones, self.zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

    def step(self):
        with torch.no_grad():
            fake = self.g(self.z)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss = self.loss(self.d(self.real), self.ones) + self.loss(self.d(fake), self.zeros)
        d_loss.backward()
        self.opt_d.step()

        self.d.requires_grad_(False)  # D is frozen in G's step: no gradients for its weights
        self.opt_g.zero_grad(set_to_none=True)
        g_loss = self.loss(self.d(self.g(self.z)), self.ones)
        g_loss.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)
        return d_loss.item(), g_loss.item()


def sgemm_gflops(n, repeats):
    a, b = torch.randn(n, n), torch.randn(n, n)
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


def main():
    if "--check" in sys.argv:
        check()
        return
    trainers = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        if "sgemm" in cmd:
            gflops = sgemm_gflops(cmd["sgemm"], cmd.get("repeats", 5))
            print(json.dumps({"gflops": gflops, "threads": torch.get_num_threads()}), flush=True)
            continue
        key = (cmd["width"], cmd["batch"])
        if key not in trainers:
            trainers[key] = Trainer(*key)
        trainer = trainers[key]
        start = time.perf_counter()
        for _ in range(cmd["steps"]):
            trainer.step()
        seconds = time.perf_counter() - start
        print(json.dumps({"seconds": seconds, "steps": cmd["steps"], "torch": torch.__version__, "path": PATH}), flush=True)


if __name__ == "__main__":
    main()
