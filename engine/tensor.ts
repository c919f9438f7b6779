/**
 * Tensor and reverse-mode autodiff.
 *
 * A tensor is an NCHW-ordered, row-major block of float32 (or, on the CPU, float64) numbers on one
 * device. Every differentiable op records a `Node` on its output: the inputs and a closure that maps
 * dL/d(output) to dL/d(each input). `backward()` walks these nodes in reverse topological order
 * (the tape) and accumulates into `.grad` of leaves, as PyTorch does.
 *
 * Memory: tensors share a reference-counted `Storage` (reshape is a view). `dispose()` drops one
 * reference; `tidy(fn)` disposes every tensor created inside `fn` except what it returns and
 * gradients of leaves. On the GPU this is what keeps memory flat across training steps.
 */
import type { Backend, DeviceName, DType, Shape, TypedData } from "./backend.ts";

const liveBytes = new Map<DeviceName, number>();

/** Device memory shared by a tensor and its views; released when the last one is disposed. */
export class Storage {
  refs = 1;
  constructor(readonly backend: Backend, public handle: unknown, readonly bytes: number) {
    liveBytes.set(backend.name, (liveBytes.get(backend.name) ?? 0) + bytes);
  }
  unref(): void {
    if (--this.refs > 0) return;
    liveBytes.set(this.backend.name, liveBytes.get(this.backend.name)! - this.bytes);
    this.backend.release(this.handle);
  }
}

/** Bytes held by live (not yet disposed) tensors on a device. */
export function bytesInUse(device: DeviceName): number {
  return liveBytes.get(device) ?? 0;
}

interface Node {
  inputs: Tensor[];
  /**
   * Maps dL/dy to dL/dx for each input (null where an input needs no gradient). It runs inside
   * `tidy`, so temporaries need no disposal.
   */
  backward: (gy: Tensor) => (Tensor | null)[];
}

let gradEnabled = true;
const scopes: Set<Tensor>[] = [];

export class Tensor {
  readonly shape: Shape;
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  node: Node | null = null;
  /** Kept tensors survive `tidy` (parameters, optimiser state, gradients of leaves). */
  kept = false;
  #storage: Storage | null;

  constructor(shape: Shape, readonly dtype: DType, storage: Storage) {
    this.shape = Object.freeze([...shape]);
    this.size = shape.reduce((a, b) => a * b, 1);
    this.#storage = storage;
    scopes.at(-1)?.add(this);
  }

  get device(): Backend {
    return this.storage.backend;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get storage(): Storage {
    if (!this.#storage) throw new Error(`tensor of shape [${this.shape}] was used after dispose()`);
    return this.#storage;
  }
  get disposed(): boolean {
    return this.#storage === null;
  }

  /** The data as a host array (float32 or float64). */
  data(): Promise<TypedData> {
    return this.device.read(this);
  }
  /** The data of a tensor in host memory (the CPU's), without a copy. Throws on other devices. */
  cpuData(): TypedData {
    if (!this.device.hostMemory) {
      throw new Error(`cpuData() on a ${this.device.name} tensor: use await data()`);
    }
    return this.storage.handle as TypedData;
  }
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs a tensor of one element, got shape [${this.shape}]`);
    return (await this.data())[0];
  }

  /** A tensor with the same storage and a new shape (one -1 is inferred). */
  view(shape: Shape): Tensor {
    const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const full = shape.map((d) => (d === -1 ? this.size / known : d));
    if (full.reduce((a, b) => a * b, 1) !== this.size || full.some((d) => !Number.isInteger(d))) {
      throw new Error(`reshape: cannot view [${this.shape}] (${this.size} elements) as [${shape}]`);
    }
    this.storage.refs++;
    return new Tensor(full, this.dtype, this.storage);
  }

  /** A tensor sharing this one's data, cut from the graph. */
  detach(): Tensor {
    return this.view(this.shape);
  }

  /** Mark as a leaf that collects gradients. */
  requireGrad(flag = true): this {
    this.requiresGrad = flag;
    return this;
  }

  /** Keep this tensor alive across `tidy` scopes (parameters, optimiser state). */
  keep(): this {
    this.kept = true;
    for (const s of scopes) s.delete(this);
    return this;
  }

  /** Take `src`'s data as this tensor's own (same shape and device); for in-place parameter updates. */
  assign(src: Tensor): void {
    if (!shapeEquals(src.shape, this.shape) || src.device !== this.device || src.dtype !== this.dtype) {
      throw new Error(
        `assign: [${src.shape}] ${src.dtype} on ${src.device.name} into [${this.shape}] ${this.dtype}`,
      );
    }
    src.storage.refs++;
    this.#storage?.unref();
    this.#storage = src.storage;
  }

  dispose(): void {
    const s = this.#storage;
    if (!s) return;
    this.#storage = null;
    this.node = null;
    s.unref();
  }

  /** Reverse-mode autodiff from this tensor; `gy` defaults to ones (a scalar loss). */
  backward(gy?: Tensor): void {
    if (!this.requiresGrad) throw new Error("backward(): the tensor does not require grad");
    const order = topologicalOrder(this);
    const grads = new Map<Tensor, Tensor>([[this, gy ?? this.device.full(this.shape, 1, this.dtype)]]);
    noGrad(() => {
      for (let i = order.length - 1; i >= 0; i--) {
        const t = order[i];
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        if (!t.node) {
          accumulateLeafGrad(t, g);
          continue;
        }
        const node = t.node;
        const gins = tidy(() => node.backward(g)); // intermediates of the rule are freed
        const seenGrads = new Set<Tensor>([g]);
        t.node.inputs.forEach((x, k) => {
          let gx = gins[k];
          if (gx && seenGrads.has(gx)) gx = gx.view(gx.shape); // a rule may pass g through unchanged
          if (gx) seenGrads.add(gx);
          if (!gx || !x.requiresGrad) return gx?.dispose();
          const prev = grads.get(x);
          if (prev) {
            grads.set(x, add(prev, gx));
            prev.dispose();
            gx.dispose();
          } else grads.set(x, gx);
        });
        if (g !== gy) g.dispose();
        t.node = null; // like PyTorch without retain_graph: the tape is freed once used
      }
    });
  }
}

function accumulateLeafGrad(t: Tensor, g: Tensor): void {
  if (g.dtype !== t.dtype || g.shape.join() !== t.shape.join()) {
    throw new Error(`gradient of shape [${g.shape}] for a leaf of shape [${t.shape}]`);
  }
  if (t.grad) {
    const sum = add(t.grad, g);
    t.grad.dispose();
    g.dispose();
    t.grad = sum.keep();
  } else t.grad = g.keep();
}

function add(a: Tensor, b: Tensor): Tensor {
  return a.device.binary("add", a, b);
}

function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const inputs = top[0].node?.inputs ?? [];
    if (top[1] < inputs.length) {
      const next = inputs[top[1]++];
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(top[0]);
      stack.pop();
    }
  }
  return order;
}

/** Attach a backward rule to `out` if gradients are on and some input needs one. */
export function record(out: Tensor, inputs: Tensor[], backward: Node["backward"]): Tensor {
  if (gradEnabled && inputs.some((x) => x.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { inputs, backward };
  }
  return out;
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run `fn` without recording the tape (evaluation, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Run `fn` and dispose every tensor it created, except those it returns (a tensor, an array of
 * them or an object whose values are tensors), kept tensors and gradients of leaves.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const out = new Set<Tensor>();
  const collect = (v: unknown) => {
    if (v instanceof Tensor) out.add(v);
    else if (Array.isArray(v)) v.forEach(collect);
    else if (v && typeof v === "object" && !(v instanceof Promise)) Object.values(v).forEach(collect);
  };
  collect(result);
  const parent = scopes.at(-1);
  for (const t of scope) {
    if (out.has(t)) parent?.add(t);
    else if (!t.kept) t.dispose();
  }
  return result;
}

export function shapeEquals(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function shapeString(s: Shape): string {
  return `[${s.join(", ")}]`;
}
