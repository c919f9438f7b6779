/** What an op file's kernels are given by the WebAssembly backend (`backend.ts`). */
import type { Shape } from "../engine/backend.ts";
import type { Tensor } from "../engine/tensor.ts";
import type { WasmRuntime } from "./runtime.ts";

export interface WasmStorage {
  ptr: number;
  bytes: number;
}

/** What an op file's kernels need: the runtime, new tensors and their addresses. */
export interface WasmContext {
  readonly runtime: WasmRuntime;
  /** Whether the GEMM micro-kernels use f32x4.relaxed_madd (else mul + add). */
  readonly relaxed: boolean;
  /** A new float32 tensor of `shape` with undefined contents. */
  empty(shape: Shape): Tensor;
  /** The byte address of a tensor's data in the memory. */
  ptr(x: Tensor): number;
}
