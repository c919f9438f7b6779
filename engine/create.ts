/** Making tensors: from host data, constants and seeded random numbers. */
import type { Backend, DType, Shape } from "./backend.ts";
import { getDefaultDevice } from "./device.ts";
import { newArray } from "./host.ts";
import type { Random } from "./random.ts";
import { shapeString, type Tensor } from "./tensor.ts";

export interface TensorOptions {
  device?: Backend;
  dtype?: DType;
  requiresGrad?: boolean;
}

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requireGrad();
  return t;
}

/** A tensor holding a copy of `data` (row-major) with `shape`. */
export function tensor(data: ArrayLike<number>, shape: Shape, opts: TensorOptions = {}): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) {
    throw new Error(`tensor: ${data.length} values do not fill shape ${shapeString(shape)} (${size})`);
  }
  const device = opts.device ?? getDefaultDevice();
  const dtype = opts.dtype ?? (data instanceof Float64Array ? "float64" : "float32");
  if (dtype === "float64" && !device.float64) {
    throw new Error(`float64 is not available on ${device.name} (the CPU reference has it)`);
  }
  const host = newArray(dtype, size);
  host.set(data);
  return finish(device.fromData(host, shape), opts);
}

export function full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
  const device = opts.device ?? getDefaultDevice();
  return finish(device.full(shape, value, opts.dtype ?? "float32"), opts);
}
export const zeros = (shape: Shape, opts: TensorOptions = {}) => full(shape, 0, opts);
export const ones = (shape: Shape, opts: TensorOptions = {}) => full(shape, 1, opts);

/** Uniform in [lo, hi). */
export function uniform(shape: Shape, lo: number, hi: number, rng: Random, opts: TensorOptions = {}): Tensor {
  const values = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = rng.uniform(lo, hi);
  return tensor(values, shape, { dtype: "float32", ...opts });
}

/** Standard normal. */
export function randn(shape: Shape, rng: Random, opts: TensorOptions = {}): Tensor {
  const values = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = rng.normal();
  return tensor(values, shape, { dtype: "float32", ...opts });
}
