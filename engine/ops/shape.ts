/**
 * Shape ops. reshape/flatten are views; slice, pad and concat are "windows" (a copy with an offset,
 * zero where the source is out of range), so each one's gradient is the opposite window:
 *
 *   slice at `start` -> gradient: pad by `start` back to x's shape
 *   pad by `before`  -> gradient: slice from `before`
 */
import type { Kernels, Shape } from "../backend.ts";
import { hostTensor, newArray, stridesOf } from "../host.ts";
import { record, shapeString, type Tensor } from "../tensor.ts";
import { add } from "./elementwise.ts";

export const shapeCpu: Pick<Kernels, "window"> = {
  window(x, shape, offset) {
    const out = newArray(x.dtype, shape.reduce((a, b) => a * b, 1));
    const xs = x.cpuData(), so = stridesOf(shape), sx = stridesOf(x.shape);
    for (let i = 0; i < out.length; i++) {
      let src = 0, inside = true;
      for (let d = 0; d < shape.length && inside; d++) {
        const k = (Math.floor(i / so[d]) % shape[d]) + offset[d];
        inside = k >= 0 && k < x.shape[d];
        src += k * sx[d];
      }
      if (inside) out[i] = xs[src];
    }
    return hostTensor(x, out, shape);
  },
};

function windowOp(x: Tensor, shape: Shape, offset: number[]): Tensor {
  const y = x.device.window(x, shape, offset);
  return record(y, [x], (gy) => [x.device.window(gy, x.shape, offset.map((o) => -o))]);
}

export function reshape(x: Tensor, shape: Shape): Tensor {
  const y = x.view(shape);
  return record(y, [x], (gy) => [gy.view(x.shape)]);
}

/** Collapse dims from `startDim` on: [N, C, H, W] -> [N, C*H*W]. */
export function flatten(x: Tensor, startDim = 1): Tensor {
  return reshape(x, [...x.shape.slice(0, startDim), -1]);
}

/** x[..., start:end, ...] along `dim`. */
export function slice(x: Tensor, dim: number, start: number, end: number): Tensor {
  if (!(dim >= 0 && dim < x.ndim && 0 <= start && start < end && end <= x.shape[dim])) {
    throw new Error(`slice: [${start}, ${end}) on dim ${dim} is outside shape ${shapeString(x.shape)}`);
  }
  const shape = x.shape.map((d, i) => (i === dim ? end - start : d));
  return windowOp(x, shape, x.shape.map((_, i) => (i === dim ? start : 0)));
}

/**
 * Zero padding as F.pad: `pads` holds (before, after) pairs starting from the LAST dimension,
 * e.g. [left, right, top, bottom] for NCHW.
 */
export function pad(x: Tensor, pads: readonly number[]): Tensor {
  if (pads.length % 2 || pads.length / 2 > x.ndim || pads.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new Error(
      `pad: pads [${pads}] must be non-negative (before, after) pairs for shape ${shapeString(x.shape)}`,
    );
  }
  const shape = [...x.shape], offset = x.shape.map(() => 0);
  for (let k = 0; k < pads.length / 2; k++) {
    const d = x.ndim - 1 - k;
    shape[d] += pads[2 * k] + pads[2 * k + 1];
    offset[d] = -pads[2 * k];
  }
  return windowOp(x, shape, offset);
}

/** Join tensors along `dim`; each input is windowed into place and the windows are summed. */
export function concat(xs: readonly Tensor[], dim: number): Tensor {
  const first = xs[0];
  for (const x of xs) {
    if (x.ndim !== first.ndim || x.shape.some((d, i) => i !== dim && d !== first.shape[i])) {
      throw new Error(
        `concat: shapes ${xs.map((t) => shapeString(t.shape)).join(", ")} differ outside dim ${dim}`,
      );
    }
  }
  const total = xs.reduce((n, x) => n + x.shape[dim], 0);
  const shape = first.shape.map((d, i) => (i === dim ? total : d));
  let at = 0, out: Tensor | null = null;
  for (const x of xs) {
    const placed = windowOp(x, shape, shape.map((_, i) => (i === dim ? -at : 0)));
    at += x.shape[dim];
    out = out ? add(out, placed) : placed;
  }
  return out!;
}
