/**
 * The WebAssembly backend: tensors in one shared linear memory, kernels written as WAT text generated
 * by TypeScript (one file per op, named after the CPU reference in `engine/ops/<op>.ts`), assembled at
 * start-up, and run on SIMD lanes and worker threads (`runtime.ts`). Float32 only.
 */
import type { Backend, Shape, TypedData } from "../engine/backend.ts";
import { registerBackend } from "../engine/device.ts";
import { Storage, Tensor } from "../engine/tensor.ts";
import { hasRelaxedSimd, WasmRuntime } from "./runtime.ts";
import { elementwiseWasm, elementwiseWat } from "./elementwise.ts";
import { reduceWasm, reduceWat } from "./reduce.ts";
import { shapeWasm } from "./shape.ts";
import { adamWasm, adamWat } from "./adam.ts";
import type { WasmContext, WasmStorage } from "./context.ts";
import { maxPoolWasm, maxPoolWat } from "./max_pool.ts";
import { filter2dWasm, filter2dWat } from "./filter2d.ts";
import { interpolateWasm, interpolateWat } from "./interpolate.ts";
import { gridSampleWasm, gridSampleWat } from "./grid_sample.ts";
import { matmulWasm, matmulWat, TILE, type Tile } from "./matmul.ts";
import { conv2dWasm, conv2dWat } from "./conv2d.ts";

export interface WasmBackend extends Backend, WasmContext {}

export interface WasmOptions {
  /** Threads, the main one included; default `navigator.hardwareConcurrency`. */
  threads?: number;
  /** Use relaxed SIMD where the engine has it (default); false forces the mul + add kernels. */
  relaxed?: boolean;
  /** The GEMM register tile (default TILE, wasm/matmul.ts); others are for bench/wasm_tiles.ts. */
  tile?: Tile;
}

/** The WAT functions of every op, for the kernels' features. */
function kernelFunctions(relaxed: boolean, tile: Tile): string[] {
  return [
    ...elementwiseWat(),
    ...reduceWat(),
    ...adamWat(),
    ...maxPoolWat(),
    ...filter2dWat(),
    ...interpolateWat(),
    ...gridSampleWat(),
    ...matmulWat(relaxed, [tile]),
    ...conv2dWat([tile]),
  ];
}

export async function createWasmBackend(options: WasmOptions = {}): Promise<WasmBackend> {
  const threads = options.threads ?? navigator.hardwareConcurrency ?? 1;
  const relaxed = (options.relaxed ?? true) && await hasRelaxedSimd();
  const tile = options.tile ?? TILE;
  const runtime = await WasmRuntime.create(kernelFunctions(relaxed, tile), threads);
  const empty = (shape: Shape) => {
    const size = shape.reduce((a, b) => a * b, 1), bytes = 4 * size;
    return new Tensor(shape, "float32", new Storage(be, { ptr: runtime.alloc(bytes), bytes }, bytes));
  };
  const ptr = (x: Tensor) => (x.storage.handle as WasmStorage).ptr;
  const ctx: WasmContext = { runtime, relaxed, empty, ptr };
  const be: WasmBackend = {
    name: "wasm",
    hostMemory: false,
    float64: false,
    queued: false,
    runtime,
    relaxed,
    empty,
    ptr,
    fromData(data: TypedData, shape: Shape) {
      if (data instanceof Float64Array) {
        throw new Error(
          `wasm: float64 data of shape [${shape}]; wasm tensors are float32 (float64 is CPU-only)`,
        );
      }
      const x = empty(shape);
      runtime.f32(ptr(x), x.size).set(data);
      return x;
    },
    read: (x) => Promise.resolve(runtime.f32(ptr(x), x.size).slice()),
    release: (storage) => runtime.free((storage as WasmStorage).ptr, (storage as WasmStorage).bytes),
    flush: () => {},
    full(shape, value, dtype) {
      if (dtype !== "float32") throw new Error(`wasm: ${dtype} tensors are not supported (float32 only)`);
      const x = empty(shape);
      runtime.f32(ptr(x), x.size).fill(value);
      return x;
    },
    ...elementwiseWasm(ctx),
    ...reduceWasm(ctx),
    ...shapeWasm(ctx),
    ...adamWasm(ctx),
    ...maxPoolWasm(ctx),
    ...filter2dWasm(ctx),
    ...interpolateWasm(ctx),
    ...gridSampleWasm(ctx),
    ...matmulWasm(ctx, tile),
    ...conv2dWasm(ctx, tile),
  };
  return be;
}

registerBackend({
  name: "wasm",
  create: (options) => createWasmBackend(options),
  autoRank: (device) => {
    const { runtime, relaxed } = device as WasmBackend;
    const simd = relaxed ? "relaxed SIMD" : "SIMD";
    return {
      rank: 20,
      why: `WebAssembly ${simd} on ${runtime.threads} thread${runtime.threads > 1 ? "s" : ""}`,
    };
  },
});
