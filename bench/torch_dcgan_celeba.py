"""The PyTorch baseline for the shipped weights: pytorch/examples dcgan/main.py,
trained on the same CelebA images for a fixed CPU-time budget.

What is kept from dcgan/main.py, unchanged: the networks (ngf = ndf = 64,
nz = 100, ConvTranspose / Conv 4x4 stride 2, BatchNorm, ReLU / LeakyReLU 0.2,
Sigmoid D), weights_init (N(0, 0.02); BN weight N(1, 0.02)), BCELoss,
Adam(2e-4, betas (0.5, 0.999)), batch 64, the step (D on real, D on G(z)
detached, then G through D on the same fakes towards label 1), a reshuffle
every epoch and no augmentation.

What is shared with `npm run train`, so the comparison is about training and
not about data: the images are read from its decoded cache (the 12,976
training images after the held-out split, already cropped and resized to
64x64 the way training/data.ts does), and the eval (`npm run eval -- --images`)
sees samples written by --samples.

Budget: --cpu-seconds counts the CPU time of this process (all threads), as
`npm run train -- --max-cpu-minutes` does for ours. Checkpoints are written
atomically every --checkpoint-every steps and at the end; --resume continues.

  /usr/bin/python3 bench/torch_dcgan_celeba.py --cache runs/.cache/celeba64-<key> \
      --out runs/torch-dcgan --cpu-seconds 4200 --samples 500 --seed 1
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from PIL import Image
from torch import nn

NZ, NGF, NDF, NC = 100, 64, 64, 3


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 8), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF), nn.ReLU(True),
            nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(NC, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


def weights_init(m):
    name = m.__class__.__name__
    if name.find('Conv') != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find('BatchNorm') != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def load_cache(prefix):
    """The trainer's cache: N x 64 x 64 x 3 uint8 (.bin) and its file list (.json)."""
    with open(prefix + '.json') as f:
        files = json.load(f)['files']
    pixels = np.fromfile(prefix + '.bin', dtype=np.uint8).reshape(len(files), 64, 64, 3)
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).contiguous()


def cpu_seconds():
    return time.process_time()  # this process, every thread


def save_atomic(obj, path):
    tmp = f'{path}.tmp-{os.getpid()}'
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_samples(net_g, folder, count, seed, batch_stats):
    """`count` PNGs from seeded noise, for `npm run eval -- --images`, and an 8x8 grid beside them.

    batch_stats False runs BatchNorm on its running statistics, as a deployed generator
    (and ours in the page) does; True uses each batch of 100's own statistics, as the
    sample images of dcgan/main.py do. Both are written; the better one is the baseline's score.
    """
    os.makedirs(folder, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    net_g.train(batch_stats)
    with torch.no_grad():
        images = torch.cat([net_g(torch.randn(100, NZ, 1, 1, generator=gen)) for _ in range((count + 99) // 100)])[:count]
    net_g.train()
    rgb = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    for i, img in enumerate(rgb):
        Image.fromarray(img).save(os.path.join(folder, f'{i:04d}.png'))
    grid = rgb[:64].reshape(8, 8, 64, 64, 3).transpose(0, 2, 1, 3, 4).reshape(512, 512, 3)
    Image.fromarray(grid).save(folder.rstrip('/') + '-grid.png')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--cache', required=True, help='prefix of the trainer cache (without .bin/.json)')
    p.add_argument('--out', required=True)
    p.add_argument('--cpu-seconds', type=float, required=True)
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--lr', type=float, default=0.0002)
    p.add_argument('--beta1', type=float, default=0.5)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--manual-seed', type=int, default=1)
    p.add_argument('--checkpoint-every', type=int, default=100)
    p.add_argument('--resume', action='store_true')
    p.add_argument('--samples', type=int, default=500)
    p.add_argument('--seed', type=int, default=1)
    opt = p.parse_args()

    torch.set_num_threads(opt.threads)
    torch.manual_seed(opt.manual_seed)
    os.makedirs(opt.out, exist_ok=True)
    data = load_cache(opt.cache)
    net_g, net_d = Generator(), Discriminator()
    net_g.apply(weights_init)
    net_d.apply(weights_init)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    ck_path = os.path.join(opt.out, 'checkpoint.pt')
    step, cpu_before, wall_before, order, pos = 0, 0.0, 0.0, torch.randperm(len(data)), 0
    if opt.resume and os.path.exists(ck_path):
        ck = torch.load(ck_path)
        net_g.load_state_dict(ck['g']); net_d.load_state_dict(ck['d'])
        opt_g.load_state_dict(ck['opt_g']); opt_d.load_state_dict(ck['opt_d'])
        step, cpu_before, wall_before, order, pos = ck['step'], ck['cpu_s'], ck['wall_s'], ck['order'], ck['pos']
        torch.set_rng_state(ck['rng'])
    cpu0, wall0 = cpu_seconds(), time.time()
    cpu = lambda: cpu_before + cpu_seconds() - cpu0
    wall = lambda: wall_before + time.time() - wall0

    def checkpoint():
        save_atomic({'g': net_g.state_dict(), 'd': net_d.state_dict(), 'opt_g': opt_g.state_dict(),
                     'opt_d': opt_d.state_dict(), 'step': step, 'cpu_s': cpu(), 'wall_s': wall(),
                     'order': order, 'pos': pos, 'rng': torch.get_rng_state()}, ck_path)

    log = open(os.path.join(opt.out, 'metrics.jsonl'), 'a')
    while cpu() < opt.cpu_seconds:
        if pos >= len(data):
            order, pos = torch.randperm(len(data)), 0
        real = data[order[pos:pos + opt.batch]]
        pos += opt.batch
        b = real.size(0)
        ones, zeros = torch.ones(b), torch.zeros(b)

        net_d.zero_grad()
        err_d_real = criterion(net_d(real), ones)
        err_d_real.backward()
        fake = net_g(torch.randn(b, NZ, 1, 1))
        err_d_fake = criterion(net_d(fake.detach()), zeros)
        err_d_fake.backward()
        opt_d.step()

        net_g.zero_grad()
        err_g = criterion(net_d(fake), ones)
        err_g.backward()
        opt_g.step()
        step += 1
        if step % 10 == 0:
            log.write(json.dumps({'step': step, 'd_loss': round((err_d_real + err_d_fake).item(), 4),
                                  'g_loss': round(err_g.item(), 4), 'cpu_s': round(cpu(), 1),
                                  'wall_s': round(wall(), 1)}) + '\n')
            log.flush()
        if step % opt.checkpoint_every == 0:
            checkpoint()
    checkpoint()
    images_seen = step * opt.batch
    # Batch statistics change BN's running averages: write the running-statistics set first.
    write_samples(net_g, os.path.join(opt.out, 'samples-running-stats'), opt.samples, opt.seed, False)
    write_samples(net_g, os.path.join(opt.out, 'samples-batch-stats'), opt.samples, opt.seed, True)
    summary = {'steps': step, 'images_seen': images_seen, 'epochs': round(images_seen / len(data), 2),
               'cpu_seconds': round(cpu(), 1), 'wall_seconds': round(wall(), 1), 'threads': opt.threads,
               'torch': torch.__version__,
               'params': {'generator': sum(p.numel() for p in net_g.parameters()),
                          'discriminator': sum(p.numel() for p in net_d.parameters())}}
    with open(os.path.join(opt.out, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary))


if __name__ == '__main__':
    main()
