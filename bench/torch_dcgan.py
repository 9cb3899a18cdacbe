"""PyTorch reference for the training benchmark (bench/train-bench.ts).

The same DCGAN as src/lib/models.ts (arch 'dcgan'), the same step as
GanTrainer.step: D learns on real (label 1) and fake (label 0) batches, the
fakes made without a graph; then G learns through D, with D frozen. Loss is
BCE with logits, Adam(2e-4, betas (0.5, 0.999), eps 1e-8), BatchNorm
momentum 0.1 / eps 1e-5, two threads.

Protocol: one JSON line per stdin command.
  {"width": 32, "batch": 64, "steps": 3}  ->  {"seconds": ..., "steps": 3}
The first command for a configuration also builds it; the caller warms up.
"""
import json
import sys
import time

import torch
from torch import nn

torch.set_num_threads(2)
Z_DIM = 100


def generator(w):
    def up(cin, cout):
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(
        nn.Linear(Z_DIM, 4 * 4 * 8 * w, bias=False), nn.Unflatten(1, (8 * w, 4, 4)), nn.BatchNorm2d(8 * w), nn.ReLU(),
        *up(8 * w, 4 * w), *up(4 * w, 2 * w), *up(2 * w, w),
        nn.ConvTranspose2d(w, 3, 4, 2, 1, bias=False), nn.Tanh())


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


def main():
    trainers = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        key = (cmd["width"], cmd["batch"])
        if key not in trainers:
            trainers[key] = Trainer(*key)
        trainer = trainers[key]
        start = time.perf_counter()
        for _ in range(cmd["steps"]):
            trainer.step()
        seconds = time.perf_counter() - start
        print(json.dumps({"seconds": seconds, "steps": cmd["steps"], "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
