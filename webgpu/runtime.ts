/**
 * The WebGPU runtime: device, buffer pool, pipeline cache and command batching. Kernels are declared
 * with the WGSL scaffold (`wgsl.ts`), which writes their shader declarations and calls `dispatch`:
 *
 *   const rt = runtimeOf(x);                       // the runtime behind a webgpu tensor
 *   const y = gpuTensor(x, outShape);              // a new float32 tensor on x's device (pooled buffer)
 *   KERNEL.record(rt, { variant, params, buffers: { x: bufferOf(x), y: bufferOf(y) }, threads: y.size });
 *
 * Temporary buffers: `rt.acquire(bytes)`, and `rt.release(buffer)` right after recording the last
 * dispatch that uses it (pooled reuse is ordered on the GPU). `rt.clear` and `rt.copy` record zeroing
 * and copies into the same batch. One buffer may not be bound twice in a dispatch if either binding is
 * writable.
 *
 * Pipelines are cached by key (the scaffold's kernel name and variant). `WGSL_CHECK=1` makes every
 * dispatch rebuild its source and throw when a key meets a second, different source: a key that leaves
 * out something the WGSL depends on. `WGSL_DUMP=dir` writes each shader to dir/<key>.wgsl when its
 * pipeline is built, so what runs can be read.
 *
 * Batching: dispatches are recorded into one command encoder (one compute pass) and submitted together
 * on `flush()`, on a read-back, or when the batch is full. Nothing is read back during a step unless
 * asked. Params of a batch are packed into one uniform arena, written just before its submission, so
 * no block is overwritten while work that uses it is pending. `queue.writeBuffer` runs before commands
 * not yet submitted, so an upload into a buffer that the unsubmitted batch uses submits the batch first.
 * A released buffer goes back to the pool at once: later dispatches reuse it in order on the GPU.
 */
import type { Backend, Shape } from "../engine/backend.ts";
import { Storage, Tensor } from "../engine/tensor.ts";
import { announceAdapter, prepareWebGPUEnvironment } from "./environment.ts";

/** A webgpu tensor's storage handle. */
export interface GpuStorage {
  buffer: GPUBuffer;
  bytes: number;
}

/** The WebGPU backend object: a `Backend` that also exposes its runtime to the kernels. */
export interface WebGPUBackend extends Backend {
  readonly runtime: GpuRuntime;
}

export interface Dispatch {
  /** Pipeline cache key: it must change whenever the WGSL text would. */
  key: string;
  source: () => string;
  /** The params block (binding 0), packed by the scaffold. */
  params?: Uint8Array;
  buffers: GPUBuffer[];
  workgroups: readonly [number, number?, number?];
}

/** Limits requested from the adapter at their real values, not WebGPU's defaults. */
const REQUESTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
] as const;

const ARENA_BYTES = 1 << 20;
const MAX_BATCH_DISPATCHES = 2048;
const MIN_BUFFER_BYTES = 256;

export class GpuRuntime {
  readonly limits: Record<(typeof REQUESTED_LIMITS)[number], number>;
  readonly adapterName: string;
  /** WGSL_CHECK=1: rebuild every dispatch's source and compare it with the one its key was built from. */
  checkSources = environment("WGSL_CHECK") === "1";
  /** WGSL_DUMP=dir: the folder every shader is written to when its pipeline is built. */
  dumpDir = environment("WGSL_DUMP") || null;
  #sources = new Map<string, string>();
  #pool = new Map<number, GPUBuffer[]>();
  #pipelines = new Map<string, GPUComputePipeline>();
  #allocatedBytes = 0;
  #pooledBytes = 0;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #inBatch = new Set<GPUBuffer>();
  #dispatches = 0;
  #arena: GPUBuffer;
  #arenaHost = new Uint8Array(ARENA_BYTES);
  #arenaUsed = 0;
  #uniformAlign: number;
  #error: GPUError | null = null;

  private constructor(readonly device: GPUDevice, info: string) {
    this.adapterName = info;
    this.limits = Object.fromEntries(
      REQUESTED_LIMITS.map((k) => [k, device.limits[k]]),
    ) as GpuRuntime["limits"];
    this.#uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    this.#arena = device.createBuffer({
      size: ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.addEventListener("uncapturederror", (e) => {
      this.#error ??= (e as GPUUncapturedErrorEvent).error;
    });
  }

  /** The runtime on the system's adapter, or null when there is none. */
  static async create(): Promise<GpuRuntime | null> {
    prepareWebGPUEnvironment();
    const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return null;
    const requiredLimits = Object.fromEntries(REQUESTED_LIMITS.map((k) => [k, adapter.limits[k]]));
    const device = await adapter.requestDevice({ requiredLimits });
    const name = adapter.info.description || adapter.info.vendor;
    announceAdapter(name);
    return new GpuRuntime(device, name);
  }

  /** Bytes of every GPU buffer the runtime created (in use plus pooled). */
  get allocatedBytes(): number {
    return this.#allocatedBytes;
  }
  /** Bytes of buffers waiting in the pool for reuse. */
  get pooledBytes(): number {
    return this.#pooledBytes;
  }

  /** A storage buffer of at least `bytes`, from the pool when one of its size class is free. */
  acquire(bytes: number): GPUBuffer {
    const limit = this.limits.maxStorageBufferBindingSize;
    if (alignUp(bytes, 16) > limit) {
      throw new Error(
        `webgpu: a tensor of ${bytes} bytes exceeds this adapter's maxStorageBufferBindingSize (${limit} bytes); ` +
          `use a smaller batch or --device cpu`,
      );
    }
    const size = sizeClass(bytes, limit);
    const free = this.#pool.get(size);
    const pooled = free?.pop();
    if (pooled) {
      this.#pooledBytes -= size;
      return pooled;
    }
    this.#allocatedBytes += size;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    return this.device.createBuffer({ size, usage });
  }

  /** Return a buffer to the pool. */
  release(buffer: GPUBuffer): void {
    const free = this.#pool.get(buffer.size) ?? [];
    free.push(buffer);
    this.#pool.set(buffer.size, free);
    this.#pooledBytes += buffer.size;
  }

  /** Copy host data into a buffer. */
  upload(buffer: GPUBuffer, data: Float32Array<ArrayBuffer>): void {
    if (this.#inBatch.has(buffer)) this.flush(); // writeBuffer would overtake the unsubmitted batch
    this.device.queue.writeBuffer(buffer, 0, data);
  }

  /** Record one compute dispatch into the current batch. */
  dispatch(d: Dispatch): void {
    const [x, y = 1, z = 1] = d.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxGroups = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxGroups || y > maxGroups || z > maxGroups) {
      throw new Error(
        `webgpu: ${d.key} dispatches [${x}, ${y}, ${z}] workgroups; the limit is ${maxGroups} per dimension`,
      );
    }
    const block = d.params;
    if (block && this.#arenaUsed + block.byteLength > ARENA_BYTES) this.flush();
    if (this.#dispatches >= MAX_BATCH_DISPATCHES) this.flush();
    const pipeline = this.#pipeline(d.key, d.source);
    const entries: GPUBindGroupEntry[] = d.buffers.map((buffer, i) => ({
      binding: i + 1,
      resource: { buffer },
    }));
    if (block) {
      const offset = this.#arenaUsed;
      this.#arenaHost.set(block, offset);
      this.#arenaUsed = alignUp(offset + block.byteLength, this.#uniformAlign);
      entries.push({ binding: 0, resource: { buffer: this.#arena, offset, size: block.byteLength } });
    }
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const pass = this.#computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    for (const b of d.buffers) this.#inBatch.add(b);
    this.#dispatches++;
  }

  /** Record a buffer-to-buffer copy into the current batch. */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number): void {
    this.#endPass();
    this.#currentEncoder().copyBufferToBuffer(src, 0, dst, 0, alignUp(bytes, 4));
    this.#inBatch.add(src).add(dst);
  }

  /** Record zeroing the first `bytes` of a buffer into the current batch. */
  clear(buffer: GPUBuffer, bytes: number): void {
    this.#endPass();
    this.#currentEncoder().clearBuffer(buffer, 0, alignUp(bytes, 4));
    this.#inBatch.add(buffer);
  }

  /** Submit the recorded batch (its params first). */
  flush(): void {
    if (!this.#encoder) return;
    this.#endPass();
    if (this.#arenaUsed > 0) {
      this.device.queue.writeBuffer(this.#arena, 0, this.#arenaHost, 0, this.#arenaUsed);
    }
    this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.#inBatch.clear();
    this.#arenaUsed = 0;
    this.#dispatches = 0;
  }

  /** Read the first `bytes` of a buffer back to the host, after all work recorded so far. */
  async read(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    if (bytes === 0) return new ArrayBuffer(0);
    const size = alignUp(bytes, 4);
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.#endPass();
    this.#currentEncoder().copyBufferToBuffer(buffer, 0, staging, 0, size);
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
      this.#throwPendingError();
      return staging.getMappedRange().slice(0, bytes);
    } finally {
      staging.destroy();
    }
  }

  #pipeline(key: string, source: () => string): GPUComputePipeline {
    let p = this.#pipelines.get(key);
    if (p && this.checkSources && source() !== this.#sources.get(key)) {
      throw new Error(
        `webgpu: pipeline key "${key}" was built from one WGSL source and is now asked for another; ` +
          "the key must cover everything the source depends on (declare it in the kernel's variant)",
      );
    }
    if (!p) {
      const code = source();
      if (this.checkSources) this.#sources.set(key, code);
      if (this.dumpDir) dumpShader(this.dumpDir, key, code);
      const module = this.device.createShaderModule({ label: key, code });
      p = this.device.createComputePipeline({
        label: key,
        layout: "auto",
        compute: { module, entryPoint: "main" },
      });
      this.#pipelines.set(key, p);
    }
    return p;
  }

  #currentEncoder(): GPUCommandEncoder {
    return (this.#encoder ??= this.device.createCommandEncoder());
  }
  #computePass(): GPUComputePassEncoder {
    return (this.#pass ??= this.#currentEncoder().beginComputePass());
  }
  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }
  #throwPendingError(): void {
    const e = this.#error;
    if (!e) return;
    this.#error = null;
    throw new Error(`webgpu: ${e.message}`);
  }
}

/**
 * Pool size classes: powers of two, so a buffer is at most twice its tensor, capped at the binding
 * limit. Always a multiple of 16 bytes, so kernels may read and write whole vec4s.
 */
function sizeClass(bytes: number, limit: number): number {
  const pow2 = 2 ** Math.ceil(Math.log2(Math.max(bytes, MIN_BUFFER_BYTES)));
  return pow2 <= limit ? pow2 : alignUp(bytes, 16);
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** The runtime behind a webgpu tensor. */
export function runtimeOf(t: Tensor): GpuRuntime {
  const backend = t.device as WebGPUBackend;
  if (!backend.runtime) throw new Error(`expected a webgpu tensor, got one on ${t.device.name}`);
  return backend.runtime;
}

export function bufferOf(t: Tensor): GPUBuffer {
  return (t.storage.handle as GpuStorage).buffer;
}

/** A new float32 tensor of `shape` on `like`'s device; its contents are whatever the kernel writes. */
export function gpuTensor(like: Tensor, shape: Shape): Tensor {
  return newGpuTensor(like.device as WebGPUBackend, shape);
}

export function newGpuTensor(backend: WebGPUBackend, shape: Shape): Tensor {
  const bytes = shape.reduce((a, b) => a * b, 1) * 4;
  const storage: GpuStorage = { buffer: backend.runtime.acquire(bytes), bytes };
  return new Tensor(shape, "float32", new Storage(backend, storage, bytes));
}

/** An environment variable, or undefined where reading it is not permitted (no prompt). */
function environment(name: string): string | undefined {
  const { state } = Deno.permissions.querySync({ name: "env", variable: name });
  return state === "granted" ? Deno.env.get(name) : undefined;
}

/** Write a shader to dir/<key>.wgsl, the key made safe as a file name (a hash keeps long keys apart). */
function dumpShader(dir: string, key: string, code: string): void {
  let hash = 2166136261;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 16777619);
  const safe = key.replace(/[^\w.-]+/g, "_").slice(0, 80);
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(`${dir}/${safe}.${(hash >>> 0).toString(16).padStart(8, "0")}.wgsl`, code);
}
