/**
 * Sums and means over all or some dimensions.
 *
 *   y = Σ_{dims} x       dL/dx = broadcast of dL/dy back over the summed dims
 *   mean = sum / count   dL/dx = broadcast(dL/dy) / count
 */
import type { Kernels, Shape } from "../backend.ts";
import { hostTensor, newArray, stridesOf } from "../host.ts";
import { record, shapeString, type Tensor } from "../tensor.ts";

export const reduceCpu: Pick<Kernels, "sumDims" | "expand"> = {
  sumDims(x, dims) {
    const shape = x.shape.map((d, i) => (dims.includes(i) ? 1 : d));
    const out = newArray(x.dtype, shape.reduce((a, b) => a * b, 1));
    const xs = x.cpuData(), si = stridesOf(x.shape), so = stridesOf(shape);
    for (let i = 0; i < xs.length; i++) out[outIndex(i, x.shape, si, so, dims)] += xs[i];
    return hostTensor(x, out, shape);
  },
  expand(x, shape) {
    const out = newArray(x.dtype, shape.reduce((a, b) => a * b, 1));
    const xs = x.cpuData(), so = stridesOf(shape), sx = stridesOf(x.shape);
    const dims = shape.map((_, d) => d).filter((d) => x.shape[d] === 1 && shape[d] !== 1);
    for (let i = 0; i < out.length; i++) out[i] = xs[outIndex(i, shape, so, sx, dims)];
    return hostTensor(x, out, shape);
  },
};

/** Index into the reduced tensor of element i of the full one: drop the coordinates of `dims`. */
function outIndex(
  i: number,
  shape: Shape,
  full: number[],
  reduced: number[],
  dims: readonly number[],
): number {
  let o = 0;
  for (let d = 0; d < shape.length; d++) {
    const k = Math.floor(i / full[d]) % shape[d];
    if (!dims.includes(d)) o += k * reduced[d];
  }
  return o;
}

function normaliseDims(x: Tensor, dims: number | readonly number[] | undefined, op: string): number[] {
  const list = dims === undefined ? x.shape.map((_, i) => i) : typeof dims === "number" ? [dims] : [...dims];
  return list.map((d) => {
    const k = d < 0 ? d + x.ndim : d;
    if (!(k >= 0 && k < x.ndim)) {
      throw new Error(`${op}: dim ${d} out of range for shape ${shapeString(x.shape)}`);
    }
    return k;
  });
}

/** Sum over `dims` (all by default); keepdim leaves them as size 1. */
export function sum(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  const ds = normaliseDims(x, dims, "sum");
  const kept = x.device.sumDims(x, ds);
  const y = keepdim ? kept : kept.view(x.shape.filter((_, i) => !ds.includes(i)));
  if (y !== kept) kept.dispose();
  return record(y, [x], (gy) => [x.device.expand(gy.view(kept.shape), x.shape)]);
}

/** Mean over `dims` (all by default). */
export function mean(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  const ds = normaliseDims(x, dims, "mean");
  const count = ds.reduce((n, d) => n * x.shape[d], 1);
  const s = sum(x, ds, keepdim);
  const y = x.device.unary("affine", s, { scale: 1 / count, shift: 0 });
  return record(y, [s], (gy) => [x.device.unary("affine", gy, { scale: 1 / count, shift: 0 })]);
}

/** Sum a broadcast gradient back to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  const lead = g.ndim - shape.length;
  const dims = g.shape.map((_, d) => d).filter((d) =>
    d < lead || (shape[d - lead] === 1 && g.shape[d] !== 1)
  );
  if (dims.length === 0) return g.view(shape);
  return g.device.sumDims(g, dims).view(shape);
}
