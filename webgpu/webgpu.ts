/**
 * The WebGPU backend: memory on the runtime's buffer pool, kernels in WGSL. Each op's kernel lives in
 * `webgpu/<op>.ts`, named after the CPU reference in `engine/ops/<op>.ts`; this file gathers them.
 */
import { registerBackend } from "../engine/device.ts";
import { Storage, Tensor } from "../engine/tensor.ts";
import { prepareWebGPUEnvironment } from "./environment.ts";
import { GpuRuntime, type GpuStorage, type WebGPUBackend } from "./runtime.ts";
import { fullGpu } from "./full.ts";
import { elementwiseGpu } from "./elementwise.ts";
import { reduceGpu } from "./reduce.ts";
import { shapeGpu } from "./shape.ts";
import { maxPoolGpu } from "./max_pool.ts";
import { filter2dGpu } from "./filter2d.ts";
import { interpolateGpu } from "./interpolate.ts";
import { gridSampleGpu } from "./grid_sample.ts";
import { matmulGpu } from "./matmul.ts";
import { adamGpu } from "./adam.ts";
import { conv2dGpu } from "./conv2d.ts";

/** Why there is no adapter and how to get one. */
export const NO_ADAPTER_MESSAGE =
  "webgpu: no WebGPU adapter found. On a machine without a GPU, install Mesa's software Vulkan driver " +
  "(Debian: `apt-get install mesa-vulkan-drivers`) and run with --unstable-webgpu, or use --device cpu.";

/** The WebGPU backend on the system's adapter; throws NO_ADAPTER_MESSAGE when there is none. */
export async function createWebGPUBackend(): Promise<WebGPUBackend> {
  const runtime = await GpuRuntime.create();
  if (!runtime) throw new Error(`${NO_ADAPTER_MESSAGE} Requested ${prepareWebGPUEnvironment().why}.`);
  const gpu: WebGPUBackend = {
    name: "webgpu",
    hostMemory: false,
    float64: false,
    queued: true,
    runtime,
    fromData(data, shape) {
      if (data instanceof Float64Array) {
        throw new Error(
          `webgpu: float64 data of shape [${shape}]; webgpu tensors are float32 (float64 is CPU-only)`,
        );
      }
      const storage: GpuStorage = { buffer: runtime.acquire(data.byteLength), bytes: data.byteLength };
      runtime.upload(storage.buffer, data as Float32Array<ArrayBuffer>);
      return new Tensor(shape, "float32", new Storage(gpu, storage, data.byteLength));
    },
    async read(x) {
      const { buffer, bytes } = x.storage.handle as GpuStorage;
      return new Float32Array(await runtime.read(buffer, bytes));
    },
    release: (storage) => runtime.release((storage as GpuStorage).buffer),
    flush: () => runtime.flush(),
    full: (shape, value, dtype) => fullGpu(gpu, shape, value, dtype),
    ...elementwiseGpu,
    ...reduceGpu,
    ...shapeGpu,
    ...maxPoolGpu,
    ...filter2dGpu,
    ...interpolateGpu,
    ...gridSampleGpu,
    ...matmulGpu,
    ...adamGpu,
    ...conv2dGpu,
  };
  return gpu;
}

/** Mesa's lavapipe, SwiftShader, WARP and other adapters that run WGSL on the CPU. */
export function isSoftwareAdapter(name: string): boolean {
  return /llvmpipe|lavapipe|swiftshader|software|warp|fallback/i.test(name);
}

registerBackend({
  name: "webgpu",
  create: createWebGPUBackend,
  autoRank: (device) => {
    const name = (device as WebGPUBackend).runtime.adapterName;
    return isSoftwareAdapter(name)
      ? { rank: 10, why: `software adapter ${name}, which runs WGSL on the CPU` }
      : { rank: 30, why: `GPU adapter ${name}` };
  },
});
