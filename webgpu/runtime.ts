/**
 * The WebGPU runtime: device, buffer pool, pipeline cache and command batching. Kernels use it so:
 *
 *   const rt = runtimeOf(x);                       // the runtime behind a webgpu tensor
 *   const y = gpuTensor(x, outShape);              // a new float32 tensor on x's device (pooled buffer)
 *   rt.dispatch({
 *     key: `conv2d/${tile}`,                       // pipeline cache key: everything the WGSL depends on
 *     source: () => wgsl,                          // called once per key
 *     params: new Params().u32(n, c).f32(scale),   // -> `@group(0) @binding(0) var<uniform> p: P;`
 *     buffers: [bufferOf(x), bufferOf(y)],         // -> `@group(0) @binding(1)`, `@binding(2)`, ...
 *     workgroups: [gx, gy, gz],
 *   });
 *
 * Temporary buffers: `rt.acquire(bytes)`, and `rt.release(buffer)` right after recording the last
 * dispatch that uses it (pooled reuse is ordered on the GPU). `rt.clear` and `rt.copy` record zeroing
 * and copies into the same batch.
 *
 * Bindings: the params block (if any) is binding 0 and buffers follow from binding 1, in order, even
 * without params. Layouts are inferred ("auto"), so every declared binding must be used by the shader,
 * and one buffer may not be bound twice in a dispatch if either binding is writable. Params fields are
 * 4-byte scalars (u32, i32, f32) in WGSL struct order, plus `dims(...)`: up to MAX_RANK integers as an
 * `array<vec4u, 2>` field at a 16-byte offset, read in WGSL with `dim(p.field, d)` (DIMS_WGSL).
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

export const MAX_RANK = 8;
/** WGSL accessor of a `dims` field; `idim` reads it as signed. */
export const DIMS_WGSL = /* wgsl */ `
fn dim(v: array<vec4u, 2>, d: u32) -> u32 { return v[d >> 2u][d & 3u]; }
fn idim(v: array<vec4u, 2>, d: u32) -> i32 { return bitcast<i32>(v[d >> 2u][d & 3u]); }`;

/** A uniform block of 4-byte scalar fields, in WGSL struct order. */
export class Params {
  #view = new DataView(new ArrayBuffer(256));
  #bytes = 0;

  u32(...values: number[]): this {
    for (const v of values) this.#next().setUint32(this.#bytes - 4, v, true);
    return this;
  }
  i32(...values: number[]): this {
    for (const v of values) this.#next().setInt32(this.#bytes - 4, v, true);
    return this;
  }
  f32(...values: number[]): this {
    for (const v of values) this.#next().setFloat32(this.#bytes - 4, v, true);
    return this;
  }
  /** Up to MAX_RANK integers (two's complement when negative) as an `array<vec4u, 2>` field. */
  dims(values: readonly number[]): this {
    if (values.length > MAX_RANK) {
      throw new Error(`webgpu: rank ${values.length} exceeds the kernels' MAX_RANK ${MAX_RANK}`);
    }
    while (this.#bytes % 16) this.u32(0);
    for (let d = 0; d < MAX_RANK; d++) this.i32(values[d] ?? 0);
    return this;
  }
  /** The block's bytes, padded to 16 (the size rule of a uniform struct). */
  bytes(): Uint8Array {
    return new Uint8Array(this.#view.buffer, 0, Math.ceil(this.#bytes / 16) * 16 || 16);
  }
  #next(): DataView {
    if (this.#bytes + 4 > this.#view.byteLength) {
      const grown = new Uint8Array(this.#view.byteLength * 2);
      grown.set(new Uint8Array(this.#view.buffer));
      this.#view = new DataView(grown.buffer);
    }
    this.#bytes += 4;
    return this.#view;
  }
}

export interface Dispatch {
  /** Pipeline cache key: it must change whenever the WGSL text would. */
  key: string;
  source: () => string;
  params?: Params;
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
    const block = d.params?.bytes();
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
    if (!p) {
      const module = this.device.createShaderModule({ label: key, code: source() });
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

/**
 * WGSL for 1-D kernels over more than 65535 workgroups: `linearWorkgroups` spreads the groups over
 * x and y, and `flatIndex(wid, nwg, lid)` recovers the thread's flat index.
 */
export const FLAT_INDEX_WGSL = (workgroupSize: number) => /* wgsl */ `
fn flatIndex(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.y * nwg.x + wid.x) * ${workgroupSize}u + lid.x;
}`;

export function linearWorkgroups(rt: GpuRuntime, threads: number, workgroupSize: number): [number, number] {
  const groups = Math.ceil(threads / workgroupSize);
  const maxX = rt.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= maxX) return [groups, 1];
  return [maxX, Math.ceil(groups / maxX)];
}
