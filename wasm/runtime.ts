/**
 * The WebAssembly backend's runtime: one shared linear memory that holds every tensor, one module of
 * kernels assembled at start-up from WAT text that TypeScript generates (`wasm/<op>.ts`), and worker
 * threads that run the same module over the same memory.
 *
 * Memory: the first page holds the control block where the threads meet; tensors live above it, placed
 * by a free list of size classes (`alloc`, `free`), so a training loop that asks for the same sizes
 * every step reuses the same blocks and the memory stops growing after the first step.
 *
 * Threads: a parallel kernel is an exported function `f(args..., start, end)` that computes the items
 * [start, end) of its output (rows, columns, planes: never a slice of a reduction). `run` cuts
 * [0, count) into chunks of `grain` items, and the main thread and the workers take chunks from a shared
 * counter until none are left. Chunk boundaries depend only on `grain`, never on the thread count, and
 * a kernel computes an item the same way in any chunk, so results are bit-identical for any number of
 * threads.
 */
import type wabtInit from "wabt";
import { Worker } from "node:worker_threads";

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the limit of 32-bit addresses
/** Int32 slots of the control block. */
const SEQ = 0, QUIT = 1, FN = 2, NARGS = 3, COUNT = 4, GRAIN = 5, NEXT = 6, DONE = 7, ERROR = 8;
/** Float64 arguments of the current job start at this byte offset, up to MAX_ARGS of them. */
const ARGS_AT = 64, MAX_ARGS = 32;
/** Tensors start here; below is the control block. */
const HEAP_BASE = PAGE;

/** Math the kernels import, where WebAssembly has no instruction (exp, log, sin, cos, pow). */
export const MATH_IMPORTS = {
  exp: Math.exp,
  log: Math.log,
  sin: Math.sin,
  cos: Math.cos,
  pow: Math.pow,
};
const MATH_WAT = Object.keys(MATH_IMPORTS).map((f) =>
  f === "pow"
    ? `(import "math" "pow" (func $pow (param f64 f64) (result f64)))`
    : `(import "math" "${f}" (func $${f} (param f64) (result f64)))`
).join("\n  ");

/** The whole module: the shared memory and math imports, then each op file's functions. */
export function moduleText(functions: string[]): string {
  return `(module
  (import "env" "memory" (memory ${HEAP_BASE / PAGE + 1} ${MAX_PAGES} shared))
  ${MATH_WAT}
${functions.join("\n")}
)`;
}

let wabt: Awaited<ReturnType<typeof wabtInit>> | null = null;
/** Modules compiled in this process, by their WAT text: a second backend (other threads) reuses them. */
const compiled = new Map<string, Promise<WebAssembly.Module>>();

/**
 * Assemble WAT text into a compiled module, once per process. V8 validates it (wabt's validator rejects
 * shared memory).
 */
export function assemble(wat: string): Promise<WebAssembly.Module> {
  let module = compiled.get(wat);
  if (!module) {
    module = assembleNow(wat);
    compiled.set(wat, module);
    module.catch(() => compiled.delete(wat));
  }
  return module;
}

async function assembleNow(wat: string): Promise<WebAssembly.Module> {
  // Loaded on first use, so the worker threads, which import this file, never load the assembler.
  wabt ??= await (await import("wabt")).default();
  const parsed = wabt.parseWat("kernels.wat", wat, { simd: true, threads: true, relaxed_simd: true });
  try {
    return new WebAssembly.Module(parsed.toBinary({}).buffer as Uint8Array<ArrayBuffer>);
  } finally {
    parsed.destroy();
  }
}

/** Whether this engine runs relaxed SIMD (f32x4.relaxed_madd); the kernels fall back to mul + add. */
export async function hasRelaxedSimd(): Promise<boolean> {
  try {
    await assemble(`(module (func (param v128) (result v128)
      local.get 0 local.get 0 local.get 0 f32x4.relaxed_madd))`);
    return true;
  } catch {
    return false;
  }
}

/** Size classes: 64-byte steps up to 4 KiB, then steps of 1/8 of the power of two below. */
function sizeClass(bytes: number): number {
  const b = Math.max(64, bytes);
  if (b <= 4096) return Math.ceil(b / 64) * 64;
  const step = 2 ** Math.floor(Math.log2(b)) / 8;
  return Math.ceil(b / step) * step;
}

export class WasmRuntime {
  readonly memory: WebAssembly.Memory;
  /** The kernels' exports on the main thread. */
  readonly kernels: Record<string, (...args: number[]) => number>;
  readonly #names: string[];
  readonly #workers: Worker[];
  // Views of the control block stay valid when the memory grows: a shared memory is never detached.
  readonly #control: Int32Array;
  readonly #args: Float64Array;
  #top = HEAP_BASE;
  #free = new Map<number, number[]>();
  #pooledBytes = 0;
  #f32: Float32Array;

  private constructor(memory: WebAssembly.Memory, instance: WebAssembly.Instance, workers: Worker[]) {
    this.memory = memory;
    this.kernels = instance.exports as WasmRuntime["kernels"];
    this.#names = Object.keys(instance.exports);
    this.#workers = workers;
    this.#control = new Int32Array(memory.buffer, 0, 16);
    this.#args = new Float64Array(memory.buffer, ARGS_AT, MAX_ARGS);
    this.#f32 = new Float32Array(memory.buffer);
  }

  /** Assemble `functions` into one module and start `threads - 1` workers beside the main thread. */
  static async create(functions: string[], threads: number): Promise<WasmRuntime> {
    if (!Number.isInteger(threads) || threads < 1) {
      throw new Error(`wasm: threads must be >= 1, got ${threads}`);
    }
    const module = await assemble(moduleText(functions));
    const memory = new WebAssembly.Memory({
      initial: HEAP_BASE / PAGE + 1,
      maximum: MAX_PAGES,
      shared: true,
    });
    const instance = new WebAssembly.Instance(module, { env: { memory }, math: MATH_IMPORTS });
    const names = Object.keys(instance.exports);
    const workers = await Promise.all(
      Array.from({ length: threads - 1 }, async () => {
        const worker = new Worker(new URL("./worker.ts", import.meta.url), {
          workerData: { module, memory, names },
        });
        await new Promise<void>((resolve, reject) => {
          worker.once("message", () => resolve());
          worker.once("error", reject);
        });
        worker.unref(); // idle workers do not keep the process alive
        return worker;
      }),
    );
    return new WasmRuntime(memory, instance, workers);
  }

  get threads(): number {
    return this.#workers.length + 1;
  }

  /** Bytes the heap has taken from the memory (in use plus pooled). */
  get allocatedBytes(): number {
    return this.#top - HEAP_BASE;
  }
  /** Bytes of freed blocks waiting for reuse. */
  get pooledBytes(): number {
    return this.#pooledBytes;
  }

  /** A 64-byte-aligned block of at least `bytes`, reused from the free list when one of its class is there. */
  alloc(bytes: number): number {
    const size = sizeClass(bytes);
    const reused = this.#free.get(size)?.pop();
    if (reused !== undefined) {
      this.#pooledBytes -= size;
      return reused;
    }
    const ptr = this.#top;
    const end = ptr + size;
    if (end > this.memory.buffer.byteLength) {
      const pages = Math.ceil((end - this.memory.buffer.byteLength) / PAGE);
      if (this.memory.buffer.byteLength / PAGE + pages > MAX_PAGES) {
        throw new Error(`wasm: out of memory: ${bytes} more bytes would pass the 4 GiB of 32-bit addresses`);
      }
      this.memory.grow(Math.max(pages, this.memory.buffer.byteLength / PAGE / 4)); // grow by >= 1/4
    }
    this.#top = end;
    return ptr;
  }

  free(ptr: number, bytes: number): void {
    const size = sizeClass(bytes);
    const list = this.#free.get(size);
    if (list) list.push(ptr);
    else this.#free.set(size, [ptr]);
    this.#pooledBytes += size;
  }

  /** A float32 view of `length` values at byte offset `ptr` (valid until the memory grows). */
  f32(ptr: number, length: number): Float32Array {
    if (this.#f32.buffer.byteLength !== this.memory.buffer.byteLength) {
      this.#f32 = new Float32Array(this.memory.buffer);
    }
    return this.#f32.subarray(ptr >> 2, (ptr >> 2) + length);
  }

  /**
   * Run kernel `name(args..., start, end)` over the items [0, count), in chunks of `grain` items shared
   * among the threads. A job of one chunk runs on the calling thread alone.
   */
  run(name: string, args: number[], count: number, grain: number): void {
    const fn = this.kernels[name];
    if (!fn) throw new Error(`wasm: no kernel named ${name}`);
    if (count <= 0) return;
    grain = Math.max(1, Math.ceil(grain));
    if (this.#workers.length === 0 || count <= grain) {
      try {
        for (let start = 0; start < count; start += grain) fn(...args, start, Math.min(count, start + grain));
      } catch (e) {
        throw new Error(`wasm: kernel ${name} failed: ${(e as Error).message}`);
      }
      return;
    }
    if (args.length > MAX_ARGS) {
      throw new Error(`wasm: ${name} has ${args.length} arguments, at most ${MAX_ARGS}`);
    }
    const c = this.#control;
    c[FN] = this.#names.indexOf(name);
    c[NARGS] = args.length;
    c[COUNT] = count;
    c[GRAIN] = grain;
    this.#args.set(args);
    Atomics.store(c, NEXT, 0);
    Atomics.store(c, DONE, 0);
    Atomics.store(c, ERROR, 0);
    Atomics.add(c, SEQ, 1);
    Atomics.notify(c, SEQ);
    let failure: Error | null = null;
    try {
      runChunks(c, fn, args);
    } catch (e) {
      failure = e as Error;
      Atomics.store(c, NEXT, count); // no thread takes another chunk
    }
    // Wait for every worker even after a failure: the next job must not start while one still runs.
    const all = this.#workers.length;
    for (let done = Atomics.load(c, DONE); done < all; done = Atomics.load(c, DONE)) {
      Atomics.wait(c, DONE, done);
    }
    if (failure) throw new Error(`wasm: kernel ${name} failed: ${failure.message}`);
    if (Atomics.load(c, ERROR)) {
      throw new Error(`wasm: kernel ${name} failed on a worker thread (its error is above)`);
    }
  }

  /** Stop the workers. The runtime must not be used afterwards. */
  close(): void {
    const c = this.#control;
    Atomics.store(c, QUIT, 1);
    Atomics.add(c, SEQ, 1);
    Atomics.notify(c, SEQ);
    for (const w of this.#workers) w.terminate();
  }
}

/** Take chunks of the current job from the shared counter until none are left (main thread and workers). */
export function runChunks(c: Int32Array, fn: (...args: number[]) => number, args: number[]): void {
  const count = c[COUNT], grain = c[GRAIN];
  for (let chunk = Atomics.add(c, NEXT, 1); chunk * grain < count; chunk = Atomics.add(c, NEXT, 1)) {
    const start = chunk * grain;
    fn(...args, start, Math.min(count, start + grain));
  }
}

export const CONTROL = { SEQ, QUIT, FN, NARGS, COUNT, NEXT, DONE, ERROR, ARGS_AT, MAX_ARGS };
