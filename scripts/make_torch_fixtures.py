"""Writes the PyTorch parity fixtures tests/fixtures/torch_*.json (and torch_sequential.safetensors).

Run with Debian's Python (python3-torch, python3-skimage): /usr/bin/python3 scripts/make_torch_fixtures.py
tests/torch_parity_test.ts reads them; CI needs no Python.

Each op case holds the inputs, the output, a fixed random upstream gradient dL/dy and the input gradients
torch computes for it, in float32 (inputs rounded to float32 first, so both sides see the same numbers) and
float64. SSIM is checked against skimage.metrics.structural_similarity, then differentiated by the same
formula written in torch (float64). The optimiser fixtures record three steps of torch.optim.Adam and SGD.
"""
import json
import pathlib
import struct

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
DTYPES = {"float32": torch.float32, "float64": torch.float64}
rng = np.random.default_rng(2022)
torch.set_num_threads(1)


def arr(t):
    t = torch.as_tensor(t).detach()
    return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}


def uniform(shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape)


def op_case(name, options, inputs, fn):
    """One case per dtype: fn(**tensors) -> y, then y.backward(upstream)."""
    upstream = None
    cases = []
    for dtype_name, dtype in DTYPES.items():
        ts = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in inputs.items()}
        y = fn(**ts)
        if upstream is None:
            upstream = uniform(y.shape)
        gy = torch.tensor(upstream, dtype=dtype)
        y.backward(gy)
        cases.append({
            "name": f"{name} {dtype_name}",
            "dtype": dtype_name,
            "options": options,
            "inputs": {k: arr(t) for k, t in ts.items()},
            "upstream": arr(gy),
            "output": arr(y),
            "grads": {k: arr(t.grad) for k, t in ts.items()},
        })
    return cases


def conv2d_cases():
    cases = []
    for stride, padding, x_shape in [(1, 0, (2, 3, 6, 7)), (2, 1, (2, 3, 7, 6))]:
        inputs = {"x": uniform(x_shape), "w": uniform((4, 3, 3, 3)), "b": uniform(4)}
        cases += op_case(f"conv2d stride {stride} padding {padding}", {"stride": stride, "padding": padding},
                         inputs, lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding))
    return cases


def conv_transpose2d_cases():
    cases = []
    for stride, padding, output_padding, k in [(1, 0, 0, 3), (2, 1, 1, 3), (2, 1, 0, 4)]:
        inputs = {"x": uniform((2, 3, 5, 4)), "w": uniform((3, 4, k, k)), "b": uniform(4)}
        options = {"stride": stride, "padding": padding, "outputPadding": output_padding}
        cases += op_case(
            f"convTranspose2d k {k} stride {stride} padding {padding} outputPadding {output_padding}", options,
            inputs, lambda x, w, b: F.conv_transpose2d(x, w, b, stride=stride, padding=padding,
                                                       output_padding=output_padding))
    return cases


def max_pool2d_cases():
    cases = []
    for kernel, stride in [(2, 2), (3, 2)]:
        cases += op_case(f"maxPool2d kernel {kernel} stride {stride}", {"kernel": kernel, "stride": stride},
                         {"x": uniform((2, 3, 7, 7))}, lambda x: F.max_pool2d(x, kernel, stride))
    return cases


def affine_grid_cases():
    cases = []
    for align in [False, True]:
        cases += op_case(f"affineGrid alignCorners {align}", {"alignCorners": align, "size": [2, 3, 5, 7]},
                         {"theta": uniform((2, 2, 3))},
                         lambda theta: F.affine_grid(theta, [2, 3, 5, 7], align_corners=align))
    return cases


def grid_sample_cases():
    cases = []
    for align in [False, True]:
        # Points up to 1.2 reach beyond the border, where zero padding decides the taps.
        inputs = {"x": uniform((2, 3, 6, 7)), "grid": uniform((2, 5, 4, 2), -1.2, 1.2)}
        cases += op_case(f"gridSample alignCorners {align}", {"alignCorners": align}, inputs,
                         lambda x, grid: F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                                                       align_corners=align))
    return cases


def interpolate_cases():
    cases = []
    for align in [False, True]:
        for size in [(9, 11), (3, 4)]:
            cases += op_case(f"interpolate to {size[0]}x{size[1]} alignCorners {align}",
                             {"size": list(size), "alignCorners": align}, {"x": uniform((2, 3, 5, 6))},
                             lambda x: F.interpolate(x, size=size, mode="bilinear", align_corners=align))
    return cases


def gaussian_window(size=11, sigma=1.5):
    """scipy.ndimage's kernel for truncate=3.5: radius int(3.5 sigma + 0.5) = 5, normalised."""
    x = np.arange(size) - size // 2
    g = np.exp(-0.5 * x**2 / sigma**2)
    g /= g.sum()
    return np.outer(g, g)


def ssim_map(x, y, data_range):
    """skimage's SSIM (gaussian_weights, use_sample_covariance=False) on the valid region, in torch."""
    channels = x.shape[1]
    window = torch.tensor(gaussian_window(), dtype=x.dtype).expand(channels, 1, 11, 11)

    def blur(t):
        return F.conv2d(t, window, groups=channels)

    ux, uy = blur(x), blur(y)
    vx, vy, vxy = blur(x * x) - ux * ux, blur(y * y) - uy * uy, blur(x * y) - ux * uy
    c1, c2 = (0.01 * data_range)**2, (0.03 * data_range)**2
    return (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


def skimage_ssim(x, y, data_range):
    """Per image (channels on axis 0): the mean SSIM and the full map; returns the batch mean and valid maps."""
    means, maps = [], []
    for a, b in zip(x, y):
        mean, full = structural_similarity(a, b, channel_axis=0, data_range=data_range, gaussian_weights=True,
                                           sigma=1.5, use_sample_covariance=False, full=True)
        means.append(mean)
        maps.append(full[:, 5:-5, 5:-5])
    return float(np.mean(means)), np.stack(maps)


def ssim_cases():
    """float64 only: skimage is the reference, and torch's float64 formula carries its gradient."""
    cases = []
    for data_range in [1.0, 255.0]:
        x = uniform((2, 2, 16, 18), 0, data_range)
        y = np.clip(x + rng.normal(0, 0.15 * data_range, x.shape), 0, data_range)
        mean, valid_map = skimage_ssim(x, y, data_range)
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.tensor(y, requires_grad=True)
        torch_map = ssim_map(tx, ty, data_range)
        map_error = np.abs(torch_map.detach().numpy() - valid_map).max()
        mean_error = abs(torch_map.mean().item() - mean)
        assert map_error < 1e-12 and mean_error < 1e-12, (map_error, mean_error)
        upstream = torch.tensor(uniform(torch_map.shape))
        torch_map.backward(upstream)
        tx2 = torch.tensor(x, requires_grad=True)
        ty2 = torch.tensor(y, requires_grad=True)
        ssim_map(tx2, ty2, data_range).mean().backward()
        cases.append({
            "name": f"ssim dataRange {data_range:g} float64",
            "dtype": "float64",
            "options": {"dataRange": data_range},
            "inputs": {"x": arr(tx), "y": arr(ty)},
            "skimageMean": mean,
            "skimageMap": arr(valid_map),
            "upstream": arr(upstream),
            "mapGrads": {"x": arr(tx.grad), "y": arr(ty.grad)},
            "meanGrads": {"x": arr(tx2.grad), "y": arr(ty2.grad)},
        })
    return cases


def optimiser_case(name, make, dtype_name, options):
    """Three steps on two parameters; the second has no gradient at step 2 (torch then skips it)."""
    dtype = DTYPES[dtype_name]
    params = [torch.tensor(uniform((3, 4)), dtype=dtype), torch.tensor(uniform(5), dtype=dtype)]
    initial = [arr(p) for p in params]
    optimiser = make(params)
    steps = []
    for step in range(3):
        grads = [uniform(p.shape) for p in params]
        if step == 1:
            grads[1] = None
        for p, g in zip(params, grads):
            p.grad = None if g is None else torch.tensor(g, dtype=dtype)
        optimiser.step()
        state = [optimiser.state[p] for p in params]
        steps.append({
            "grads": [None if p.grad is None else arr(p.grad) for p in params],
            "params": [arr(p) for p in params],
            "state": [{k: arr(v) for k, v in s.items()} for s in state],
        })
    return {"name": f"{name} {dtype_name}", "dtype": dtype_name, "options": options, "initial": initial,
            "steps": steps}


def optimiser_cases():
    adam = {"lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weightDecay": 0.1}
    sgd = {"lr": 1e-1, "momentum": 0.9, "weightDecay": 0.1}
    cases = []
    for dtype_name in DTYPES:
        cases.append(optimiser_case("Adam", lambda ps: torch.optim.Adam(
            ps, lr=adam["lr"], betas=tuple(adam["betas"]), eps=adam["eps"], weight_decay=adam["weightDecay"]),
            dtype_name, adam))
        cases.append(optimiser_case("SGD", lambda ps: torch.optim.SGD(
            ps, lr=sgd["lr"], momentum=sgd["momentum"], weight_decay=sgd["weightDecay"]), dtype_name, sgd))
    return cases


def init_cases():
    """torch's fan_in (init._calculate_fan_in_and_fan_out) and the largest |value| torch draws, per layer."""
    torch.manual_seed(0)
    layers = {
        "Conv2d(3, 8, 5)": torch.nn.Conv2d(3, 8, 5),
        "ConvTranspose2d(8, 3, 4)": torch.nn.ConvTranspose2d(8, 3, 4),
        "Linear(20, 7)": torch.nn.Linear(20, 7),
    }
    cases = []
    for name, layer in layers.items():
        fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(layer.weight)
        cases.append({"name": name, "weightShape": list(layer.weight.shape), "fanIn": fan_in,
                      "weightAbsMax": layer.weight.abs().max().item(), "biasAbsMax": layer.bias.abs().max().item()})
    return cases


def write_safetensors(path, tensors, metadata):
    """The safetensors layout, written by hand (Debian has no safetensors package)."""
    header = {"__metadata__": metadata}
    chunks, offset = [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def sequential_case():
    """A small nn.Sequential covering every layer kind nn.ts mirrors; weights go to a safetensors file."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, stride=2, padding=1),
        torch.nn.LeakyReLU(0.2),
        torch.nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1),
        torch.nn.Sigmoid(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(48, 5),
        torch.nn.ReLU(),
    )
    write_safetensors(FIXTURES / "torch_sequential.safetensors", model.state_dict(), {"format": "pt"})
    x = torch.tensor(uniform((2, 2, 8, 8)), dtype=torch.float32)
    return {"names": list(model.state_dict().keys()),
            "shapes": [list(t.shape) for t in model.state_dict().values()],
            "input": arr(x), "output": arr(model(x))}


def main():
    fixtures = {
        "conv2d": conv2d_cases(),
        "conv_transpose2d": conv_transpose2d_cases(),
        "max_pool2d": max_pool2d_cases(),
        "affine_grid": affine_grid_cases(),
        "grid_sample": grid_sample_cases(),
        "interpolate": interpolate_cases(),
        "ssim": ssim_cases(),
        "optim": optimiser_cases(),
        "init": init_cases(),
        "sequential": sequential_case(),
    }
    total = 0
    for name, content in fixtures.items():
        path = FIXTURES / f"torch_{name}.json"
        path.write_text(json.dumps(content, separators=(",", ":")) + "\n")
        total += path.stat().st_size
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
