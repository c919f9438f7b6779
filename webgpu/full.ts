/** `full`: a new tensor with every element set to one value. */
import type { DType, Shape } from "../engine/backend.ts";
import type { Tensor } from "../engine/tensor.ts";
import { bufferOf, newGpuTensor, type WebGPUBackend } from "./runtime.ts";
import { kernel, readWrite } from "./wgsl.ts";

const FULL = kernel("full", () => ({
  params: { n: "u32", value: "f32" },
  buffers: { y: readWrite() },
  flat: { index: "i", count: "p.n" },
  body: "  y[i] = p.value;",
}));

/** A new float32 tensor of `shape` on `backend`, every element `value`. */
export function fullGpu(backend: WebGPUBackend, shape: Shape, value: number, dtype: DType): Tensor {
  if (dtype !== "float32") throw new Error(`webgpu: full() of dtype ${dtype}; webgpu tensors are float32`);
  const y = newGpuTensor(backend, shape);
  FULL.record(backend.runtime, {
    params: { n: y.size, value },
    buffers: { y: bufferOf(y) },
    threads: y.size,
  });
  return y;
}
