/**
 * The WGSL scaffold. A kernel states its uniform parameters and its storage buffers once, and the
 * scaffold writes both sides from that one statement: the WGSL declarations (`struct P`, the
 * `@binding`s, the `main` signature) and the host side (packing the params block in struct order,
 * binding the buffers in binding order, the workgroup count). A kernel file therefore holds only what
 * is its own: the shader's body, its helper functions and the choice of variant.
 *
 *   const FULL = kernel("full", () => ({
 *     params: { n: "u32", value: "f32" },          // -> struct P { n: u32, value: f32 }, binding 0
 *     buffers: { y: readWrite() },                 // -> @binding(1) var<storage, read_write> y: array<f32>
 *     flat: { index: "i", count: "p.n" },          // -> let i = flatIndex(...); if (i >= p.n) { return; }
 *     body: "y[i] = p.value;",
 *   }));
 *   FULL.record(rt, { params: { n: y.size, value }, buffers: { y: bufferOf(y) }, threads: y.size });
 *
 * Variants. A kernel whose WGSL depends on compile-time choices (an op, a rank, a tile, a layer's
 * geometry) takes them as its `variant`, a plain JSON value, and builds its shader from that alone.
 * The pipeline cache key is the kernel's name and its variant, so the key covers everything the WGSL
 * depends on by construction. With `WGSL_CHECK=1` (the test task sets it) the runtime also rebuilds
 * the source at every dispatch and throws when one key ever meets two different sources.
 * With `WGSL_DUMP=dir` every shader is written to `dir` when its pipeline is built.
 *
 * Params: fields are 4-byte scalars (u32, i32, f32) in declaration order, or `dims`: up to MAX_RANK
 * integers as an `array<vec4u, 2>` at a 16-byte offset, read in WGSL with `dim(p.field, d)` (or `idim`
 * for signed values). Buffers bind from 1 in declaration order, after the params block (binding 0),
 * even without params. Layouts are inferred ("auto"), so every declared binding must be used by the
 * shader. A buffer declared `null` (an optional input, such as a bias) is left out of the shader and
 * of the bind group.
 */
import type { GpuRuntime } from "./runtime.ts";

/** Threads per workgroup of the 1-D kernels. */
export const WG = 256;
/** Largest rank a `dims` field holds. */
export const MAX_RANK = 8;

/** 0, 1, ..., n − 1: the unrolled indices of generated WGSL. */
export const range = (n: number): number[] => [...Array(n).keys()];

/** One line of WGSL per element of `xs` (an unrolled loop). */
export function each<T>(xs: readonly T[], line: (x: T) => string): string {
  return xs.map(line).join("\n");
}

/** WGSL `const` declarations of non-negative integers (a layer's geometry compiled into its shader). */
export function constants(values: Record<string, number>): string {
  return Object.entries(values).map(([name, v]) => `const ${name} = ${v}u;`).join("\n");
}

/** WGSL accessors of a `dims` field; `idim` reads it as signed. */
const DIMS_WGSL = /* wgsl */ `
fn dim(v: array<vec4u, 2>, d: u32) -> u32 { return v[d >> 2u][d & 3u]; }
fn idim(v: array<vec4u, 2>, d: u32) -> i32 { return bitcast<i32>(v[d >> 2u][d & 3u]); }`;

/**
 * WGSL for 1-D kernels over more than 65535 workgroups: `linearWorkgroups` spreads the groups over
 * x and y, and `flatIndex(wid, nwg, lid)` recovers the thread's flat index.
 */
const flatIndexWgsl = (size: number) => /* wgsl */ `
fn flatIndex(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.y * nwg.x + wid.x) * ${size}u + lid.x;
}`;

/** Workgroups for `threads` threads of a 1-D kernel: over x, and over y too past the per-dimension limit. */
export function linearWorkgroups(rt: GpuRuntime, threads: number, workgroupSize = WG): [number, number] {
  const groups = Math.ceil(threads / workgroupSize);
  const maxX = rt.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= maxX) return [groups, 1];
  return [maxX, Math.ceil(groups / maxX)];
}

export type Field = "u32" | "i32" | "f32" | "dims";
export type Fields = Record<string, Field>;
/** The fields of a kernel without params. */
export type NoFields = Record<never, Field>;
/** Host values of declared fields: a number per scalar, a list per `dims`. */
export type FieldValues<F extends Fields> = {
  [K in keyof F]: F[K] extends "dims" ? readonly number[]
    : [F[K]] extends [Field] ? number | readonly number[]
    : number;
};

/** A storage buffer: its access and its element type (`array<element>`). */
export interface StorageBuffer {
  access: "read" | "read_write";
  element: string;
}
export const read = (element = "f32"): StorageBuffer => ({ access: "read", element });
export const readWrite = (element = "f32"): StorageBuffer => ({ access: "read_write", element });
/** Buffers in binding order; `null` leaves an optional one out. */
export type StorageBuffers = Record<string, StorageBuffer | null>;
/** The GPU buffers of a dispatch, by the names the shader declares (null for a buffer declared null). */
export type BoundBuffers<B extends StorageBuffers> = {
  [K in keyof B]: null extends B[K] ? GPUBuffer | null : GPUBuffer;
};

/** What a kernel declares for one variant; the scaffold writes the rest. */
export interface Shader<F extends Fields = Fields, B extends StorageBuffers = StorageBuffers> {
  /** Uniform fields in struct order: `struct P`, bound at 0 as `p`, and the host packing. */
  params?: F;
  /** Storage buffers in binding order, from binding 1. */
  buffers: B;
  /** WGSL between the bindings and `main`: constants, helper functions, workgroup memory. */
  declarations?: string;
  /** Threads per workgroup: a count (x only) or [x, y]. Default WG. */
  workgroupSize?: number | readonly [number, number];
  /**
   * A 1-D kernel: `main` starts with `let <index> = flatIndex(...)` and, with `count`, returns when
   * index >= count. It is dispatched by `threads`.
   */
  flat?: { index: string; count?: string };
  /** The statements of `main` after the preamble. */
  body: string;
}

/** A shader as the pipeline sees it: its WGSL and how its params and buffers are laid out. */
interface Built {
  source: string;
  fields: [string, Field][];
  buffers: [string, boolean][];
  threadsPerGroup: number;
}

function sizeOf(shader: Shader): readonly [number, number] {
  const s = shader.workgroupSize ?? WG;
  return typeof s === "number" ? [s, 1] : s;
}

/** The WGSL of `shader`, named `name` in its first line: bindings, helpers, then `main`. */
export function render(name: string, shader: Shader): string {
  const fields = Object.entries(shader.params ?? {});
  const [x, y] = sizeOf(shader);
  const bindings = [`// ${name}`];
  if (fields.length) {
    const members = fields.map(([f, kind]) => `${f}: ${kind === "dims" ? "array<vec4u, 2>" : kind}`);
    bindings.push(`struct P { ${members.join(", ")} }`, "@group(0) @binding(0) var<uniform> p: P;");
  }
  let binding = 1;
  for (const [name, b] of Object.entries(shader.buffers)) {
    if (b) {
      bindings.push(
        `@group(0) @binding(${binding++}) var<storage, ${b.access}> ${name}: array<${b.element}>;`,
      );
    }
  }
  const helpers = [
    fields.some(([, kind]) => kind === "dims") ? DIMS_WGSL : "",
    shader.flat ? flatIndexWgsl(x * y) : "",
    shader.declarations ?? "",
  ];
  const main = [
    `@compute @workgroup_size(${y === 1 ? x : `${x}, ${y}`})`,
    "fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {",
  ];
  if (shader.flat) {
    const { index, count } = shader.flat;
    main.push(`  let ${index} = flatIndex(wid, nwg, lid);`);
    if (count) main.push(`  if (${index} >= ${count}) { return; }`);
  }
  main.push(shader.body.replace(/^\n+|\s+$/g, ""), "}");
  const sections = [bindings.join("\n"), ...helpers.map((h) => h.trim()).filter((h) => h), main.join("\n")];
  return sections.join("\n\n") + "\n";
}

function build(name: string, shader: Shader): Built {
  const [x, y] = sizeOf(shader);
  return {
    source: render(name, shader),
    fields: Object.entries(shader.params ?? {}),
    buffers: Object.entries(shader.buffers).map(([b, decl]) => [b, decl !== null]),
    threadsPerGroup: x * y,
  };
}

/** The params block of `values` in the order of `fields`, padded to 16 bytes (a uniform struct's size rule). */
function pack(kernel: string, fields: [string, Field][], values: Record<string, number | readonly number[]>) {
  // At most 3 words of padding and MAX_RANK words per field.
  const view = new DataView(new ArrayBuffer(16 * Math.ceil((fields.length * (MAX_RANK + 3)) / 4)));
  let at = 0;
  for (const [name, kind] of fields) {
    const v = values[name];
    if (kind === "dims") {
      if (!Array.isArray(v)) throw new Error(`webgpu: ${kernel}: param ${name} must be a list, got ${v}`);
      if (v.length > MAX_RANK) {
        throw new Error(
          `webgpu: ${kernel}: rank ${v.length} of ${name} exceeds the kernels' MAX_RANK ${MAX_RANK}`,
        );
      }
      at = Math.ceil(at / 16) * 16;
      for (let d = 0; d < MAX_RANK; d++, at += 4) view.setInt32(at, v[d] ?? 0, true);
    } else {
      if (typeof v !== "number") {
        throw new Error(`webgpu: ${kernel}: param ${name} must be a number, got ${v}`);
      }
      if (kind === "u32") view.setUint32(at, v, true);
      else if (kind === "i32") view.setInt32(at, v, true);
      else view.setFloat32(at, v, true);
      at += 4;
    }
  }
  return new Uint8Array(view.buffer, 0, Math.ceil(at / 16) * 16 || 16);
}

/** One dispatch of a kernel: its variant (when it has one), param values, buffers and size. */
export type Run<V, F extends Fields, B extends StorageBuffers> =
  & ([V] extends [undefined] ? { variant?: undefined } : { variant: V })
  & (keyof F extends never ? { params?: undefined } : { params: FieldValues<F> })
  & { buffers: BoundBuffers<B> }
  & ({ threads: number; workgroups?: undefined } | { workgroups: readonly [number, number?, number?] });

const NAMES = new Set<string>();

/** A kernel: its name, and its shader as a function of its variant (see the module comment). */
export class Kernel<V, F extends Fields, B extends StorageBuffers> {
  #built = new Map<string, Built>();

  constructor(readonly name: string, readonly shader: (variant: V) => Shader<F, B>) {
    if (NAMES.has(name)) {
      throw new Error(`webgpu: two kernels are named "${name}"; pipeline keys would collide`);
    }
    NAMES.add(name);
  }

  /** The pipeline cache key of a variant: the kernel's name and the variant's JSON. */
  key(variant: V): string {
    if (variant === undefined) return this.name;
    return `${this.name}/${typeof variant === "object" ? JSON.stringify(variant) : String(variant)}`;
  }

  /** The WGSL of a variant, as the pipeline is built from it. */
  source(variant: V): string {
    return render(this.key(variant), this.shader(variant));
  }

  /** Record one dispatch into the runtime's current batch. */
  record(rt: GpuRuntime, run: Run<V, F, B>): void {
    const variant = run.variant as V, key = this.key(variant);
    let built = this.#built.get(key);
    if (!built) this.#built.set(key, built = build(key, this.shader(variant)));
    const bound = run.buffers as Record<string, GPUBuffer | null>;
    const buffers: GPUBuffer[] = [];
    for (const [name, declared] of built.buffers) {
      const b = bound[name];
      if (declared !== (b !== null && b !== undefined)) {
        throw new Error(
          `webgpu: ${key}: buffer ${name} is ${
            declared ? "declared but not given" : "given but not declared"
          }`,
        );
      }
      if (b) buffers.push(b);
    }
    const source = built.source;
    rt.dispatch({
      key,
      source: rt.checkSources ? () => this.source(variant) : () => source,
      params: built.fields.length
        ? pack(key, built.fields, run.params as Record<string, number | readonly number[]>)
        : undefined,
      buffers,
      workgroups: run.workgroups ?? linearWorkgroups(rt, run.threads, built.threadsPerGroup),
    });
  }
}

/** Declare a kernel; `shader` must build its WGSL from its variant alone (the variant is the cache key). */
export function kernel<V = undefined, F extends Fields = NoFields, B extends StorageBuffers = StorageBuffers>(
  name: string,
  shader: (variant: V) => Shader<F, B>,
): Kernel<V, F, B> {
  return new Kernel(name, shader);
}
