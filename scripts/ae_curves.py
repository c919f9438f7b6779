"""PyTorch learning curves of the Table-1 AE on patches exported by `deno task learning-curves --export DIR`.

Optional: needs PyTorch (Debian: apt-get install python3-torch, run with /usr/bin/python3); never run by the
tests. The same measurement as `deno task learning-curves` (experiments/learning_curve.ts), in PyTorch for
speed on a CPU: the plain AE, Adam lr 2e-4 and weight decay 1e-5, batch 16, the content-masked L2; every
--every steps the held-out (test/good) MSE as a fraction of the average training image's and the mean SSIM
(Gaussian 11x11, sigma 1.5, valid region, content pixels).

    /usr/bin/python3 scripts/ae_curves.py DIR/CLASS [--init he|torch] [--steps 1500] [--every 100]
        [--seed 1] [--lr 2e-4] [--batch 16] [--latent 100] [--json OUT]

He init: kaiming_uniform_(w, a=0.2) on every conv and deconv weight (models/autoencoder.ts), biases as
PyTorch's default.
"""
import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def autoencoder(channels, latent, size=128, base=32, init="he"):
    specs = [(base, 4, 2, 1), (base, 4, 2, 1), (base, 3, 1, 1), (2 * base, 4, 2, 1), (2 * base, 3, 1, 1),
             (4 * base, 4, 2, 1), (2 * base, 3, 1, 1), (base, 3, 1, 1), (latent, size // 16, 1, 0)]
    enc, cin = [], channels
    for i, (out, k, s, p) in enumerate(specs):
        enc.append(nn.Conv2d(cin, out, k, s, p))
        if i < len(specs) - 1:
            enc.append(nn.LeakyReLU(0.2))
        cin = out
    dec, ins = [], [channels] + [s[0] for s in specs[:-1]]
    for i, (out, k, s, p) in reversed(list(enumerate(specs))):
        dec.append(nn.ConvTranspose2d(out, ins[i], k, s, p))
        dec.append(nn.LeakyReLU(0.2) if i > 0 else nn.Sigmoid())
    model = nn.Sequential(nn.Sequential(*enc), nn.Sequential(*dec))
    if init == "he":
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_uniform_(m.weight, a=0.2, nonlinearity="leaky_relu")
    return model


def load(prefix):
    header = json.load(open(prefix + ".json"))
    raw = open(prefix + ".bin", "rb").read()

    def part(h):
        n, c, s = h["n"], h["channels"], h["size"]
        images = np.frombuffer(raw, np.float32, n * c * s * s, h["images"]).reshape(n, c, s, s)
        content = np.frombuffer(raw, np.uint8, n * s * s, h["content"]).reshape(n, 1, s, s)
        return torch.tensor(images.copy()), torch.tensor(content.astype(np.float32))

    return part(header["train"]), part(header["validation"]), part(header["heldOut"])


def gaussian_window(channels, n=11, sigma=1.5):
    g = torch.tensor([math.exp(-((i - n // 2) ** 2) / (2 * sigma * sigma)) for i in range(n)], dtype=torch.float64)
    g = g / g.sum()
    return torch.outer(g, g).float().expand(channels, 1, n, n).contiguous()


def ssim_valid(x, y):
    """The valid SSIM map [N, C, H-10, W-10], skimage's convention (population covariance, data range 1)."""
    c = x.shape[1]
    w = gaussian_window(c)
    f = lambda t: F.conv2d(t, w, groups=c)
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def masked_mse(x, y, m):
    return ((x - y).square() * m).sum() / (m.sum() * x.shape[1])


def evaluate(model, held, baseline_out):
    x, m = held
    with torch.no_grad():
        y = torch.cat([model(x[i:i + 32]) for i in range(0, len(x), 32)])

    def quality(out):
        mse = 255 ** 2 * masked_mse(x, out, m).item()
        s = ssim_valid(x, out)
        mm = m[:, :, 5:-5, 5:-5].expand_as(s)
        return mse, (s * mm).sum().item() / mm.sum().item()

    return quality(y), quality(baseline_out.expand_as(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("--init", default="he")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--latent", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    (tx, tm), (vx, vm), held = load(a.prefix)
    vx, vm = vx[:160], vm[:160]
    mean = (tx * tm).sum(0, keepdim=True) / tm.sum(0, keepdim=True).clamp(min=1)
    model = autoencoder(tx.shape[1], a.latent, tx.shape[2], init=a.init)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=1e-5)
    points, start, step = [], time.perf_counter(), 0
    gen = torch.Generator().manual_seed(a.seed)
    order = torch.randperm(len(tx), generator=gen)
    cursor = 0

    def measure():
        (mse, ssim), (bmse, bssim) = evaluate(model, held, mean)
        with torch.no_grad():
            val = sum(masked_mse(vx[i:i + 32], model(vx[i:i + 32]), vm[i:i + 32]).item() * len(vx[i:i + 32])
                      for i in range(0, len(vx), 32)) / len(vx)
        p = {"step": step, "images": step * a.batch, "valLoss": val, "mse255": mse, "mseFraction": mse / bmse,
             "ssim": ssim, "baselineMse255": bmse, "baselineSsim": bssim, "seconds": time.perf_counter() - start}
        points.append(p)
        print(f"step {step:5d} images {step * a.batch:6d} val {val:.5f} mse {mse:7.1f} fraction {mse / bmse:.3f} "
              f"ssim {ssim:.3f} (avg image {bmse:.1f}, {bssim:.3f}) {p['seconds']:.0f}s", flush=True)

    measure()
    model.train()
    while step < a.steps:
        if cursor + a.batch > len(order):
            order, cursor = torch.randperm(len(tx), generator=gen), 0
        idx = order[cursor:cursor + a.batch]
        cursor += a.batch
        x, m = tx[idx], tm[idx]
        opt.zero_grad()
        loss = masked_mse(x, model(x), m)
        loss.backward()
        opt.step()
        step += 1
        if step % a.every == 0:
            measure()
    if a.json:
        json.dump({"prefix": a.prefix, "init": a.init, "seed": a.seed, "lr": a.lr, "points": points},
                  open(a.json, "w"))


if __name__ == "__main__":
    main()
