"""PyTorch's speed on the same training steps as bench/training.ts, for the README's comparison.

Optional: needs PyTorch (Debian: apt-get install python3-torch, then run with Debian's Python) and is never
run by the tests.

    /usr/bin/python3 scripts/torch_baseline.py [--steps 5] [--threads 1,2]

It builds the same networks at full size, 128x128x3: the Table-1 autoencoder (LeakyReLU 0.2, sigmoid
output), the rotation STN (resize to 64, standardise, 4 x [conv 3x3 -> ReLU -> maxpool 2], fc 512-64-32-1,
affine_grid + grid_sample), and times one Adam step (forward, backward, update) of:
  - STN pre-training, batch 32: Eq. 7's loss (resize to 64, 5x5 Gaussian blur, Sobel x, |.|, content mask);
  - the four configurations of Section 8.1, batch 16: the content-masked L2 of the reconstruction.
Each figure is the mean over `steps` steps after two warm-up steps, per thread count, on random inputs.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SIZE, CHANNELS, LATENT, BASE = 128, 3, 100, 32


def autoencoder():
    specs = [(BASE, 4, 2, 1), (BASE, 4, 2, 1), (BASE, 3, 1, 1), (2 * BASE, 4, 2, 1), (2 * BASE, 3, 1, 1),
             (4 * BASE, 4, 2, 1), (2 * BASE, 3, 1, 1), (BASE, 3, 1, 1), (LATENT, SIZE // 16, 1, 0)]
    enc, cin = [], CHANNELS
    for i, (out, k, s, p) in enumerate(specs):
        enc.append(nn.Conv2d(cin, out, k, s, p))
        if i < len(specs) - 1:
            enc.append(nn.LeakyReLU(0.2))
        cin = out
    dec, ins = [], [CHANNELS] + [s[0] for s in specs[:-1]]
    for i, (out, k, s, p) in reversed(list(enumerate(specs))):
        dec.append(nn.ConvTranspose2d(out, ins[i], k, s, p))
        dec.append(nn.LeakyReLU(0.2) if i > 0 else nn.Sigmoid())
    return nn.Sequential(nn.Sequential(*enc), nn.Sequential(*dec))


class Stn(nn.Module):
    def __init__(self):
        super().__init__()
        layers, cin = [], CHANNELS
        for out in (8, 16, 32, 32):
            layers += [nn.Conv2d(cin, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            cin = out
        self.loc = nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 32),
                                 nn.ReLU(), nn.Linear(32, 1))

    def angle(self, x):
        small = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
        centred = small - small.mean(dim=(1, 2, 3), keepdim=True)
        z = centred / (centred.square().mean(dim=(1, 2, 3), keepdim=True).sqrt() + 1e-5)
        return self.loc(z).reshape(-1)

    @staticmethod
    def rotate(x, alpha):
        c, s, z = torch.cos(alpha), torch.sin(alpha), torch.zeros_like(alpha)
        theta = torch.stack([torch.stack([c, -s, z], 1), torch.stack([s, c, z], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def gaussian(n=5, sigma=1.0):
    g = torch.tensor([math.exp(-((i - n // 2) ** 2) / (2 * sigma * sigma)) for i in range(n)])
    k = torch.outer(g, g)
    return (k / k.sum()).reshape(1, 1, n, n)


SOBEL_X = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).reshape(1, 1, 3, 3)


def orientation_loss(stn, x, mask):
    alpha = stn.angle(x)
    y = F.interpolate(Stn.rotate(x, alpha), size=(64, 64), mode="bilinear", align_corners=False)
    y = y.reshape(-1, 1, 64, 64)
    edges = F.conv2d(F.conv2d(y, gaussian()), SOBEL_X).reshape(x.shape[0], CHANNELS, 58, 58)
    return (edges.abs() * mask).sum() / (mask.sum() * CHANNELS)


def workloads():
    def ae_step(model):
        return lambda x, m: ((model(x) - x).square() * m).sum() / (m.sum() * CHANNELS)

    def stn_ae(stn, ae):
        def forward(x):
            alpha = stn.angle(x)
            rec = ae(Stn.rotate(x, alpha))
            return Stn.rotate(rec, -alpha)
        return forward

    stn = Stn()
    yield "STN pre-training (Eq. 7)", 32, list(stn.parameters()), \
        lambda x, m: orientation_loss(stn, x, torch.ones(x.shape[0], 1, 58, 58))
    ae = autoencoder()
    yield "1. AE", 16, list(ae.parameters()), ae_step(ae)
    for name, train_stn in (("2. STN+AE, random STN", True), ("3. STN+AE, pre-trained frozen STN", False),
                            ("4. STN+AE, pre-trained fine-tuned STN", True)):
        stn, ae = Stn(), autoencoder()
        for p in stn.parameters():
            p.requires_grad_(train_stn)
        params = list(ae.parameters()) + (list(stn.parameters()) if train_stn else [])
        yield name, 16, params, ae_step(stn_ae(stn, ae))


def seconds_per_step(batch, params, loss_of, steps):
    torch.manual_seed(1)
    x = torch.rand(batch, CHANNELS, SIZE, SIZE)
    m = torch.ones(batch, 1, SIZE, SIZE)
    opt = torch.optim.Adam(params, lr=2e-4, weight_decay=1e-5)

    def step():
        opt.zero_grad()
        loss = loss_of(x, m)
        loss.backward()
        opt.step()
        return loss.item()

    step(), step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for name, batch, params, loss_of in workloads():
            s = seconds_per_step(batch, params, loss_of, args.steps)
            rows.append([f"torch {torch.__version__}, {threads} thread{'s' if threads > 1 else ''}", name,
                         str(batch), f"{s * 1000:.0f}", f"{batch / s:.2f}"])
            print("  ".join(rows[-1]), flush=True)
    header = ["device", "run", "batch", "ms/step", "images/s"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
