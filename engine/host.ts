/** Host (CPU) arrays behind tensors: the CPU backend and the CPU reference kernels build on these. */
import type { DType, Shape, TypedData } from "./backend.ts";
import { shapeEquals, shapeString, Storage, Tensor } from "./tensor.ts";

export function newArray(dtype: DType, n: number): TypedData {
  return dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
}

export function dtypeOf(data: TypedData): DType {
  return data instanceof Float64Array ? "float64" : "float32";
}

/** Wrap a host array as a tensor on the device of `like` (the CPU backend), with like's dtype. */
export function hostTensor(like: Tensor, data: TypedData, shape: Shape): Tensor {
  return new Tensor(shape, like.dtype, new Storage(like.device, data, data.byteLength));
}

/** Row-major strides of a shape. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/**
 * A copy of `source` (any device or dtype) with the device and dtype of `like`, which it must match
 * in shape; `name` is the tensor's name in the error. Loading checkpoints (modules and optimisers)
 * goes through it.
 */
export async function copyOnto(source: Tensor, like: Tensor, name: string): Promise<Tensor> {
  if (!shapeEquals(source.shape, like.shape)) {
    throw new Error(`${name} is ${shapeString(source.shape)}, expected ${shapeString(like.shape)}`);
  }
  const data = newArray(like.dtype, like.size);
  data.set(await source.data());
  return like.device.fromData(data, like.shape);
}
