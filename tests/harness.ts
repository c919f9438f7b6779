/**
 * The op test harness. Every op contributes `OpCase`s (tests/cases/*.ts). Each case is checked
 * twice, as teenygrad does:
 *
 * 1. Gradient check, float64, CPU reference. The loss is L = Σ w ⊙ f(x) with fixed random weights w,
 *    so every output element carries a distinct weight. The analytic gradient (backward) is compared
 *    with central differences (L(x + h eᵢ) − L(x − h eᵢ)) / 2h, h = 1e-6, element by element, with
 *      error = |analytic − numeric| / max(1, |analytic|, |numeric|)
 *    (relative where gradients are large, absolute where they are below 1). It must be ≤ 1e-6.
 * 2. Device check, float32, on every device (the CPU included): forward output and every input
 *    gradient against the float64 CPU reference, with
 *      error = max |device − reference| / max |reference|
 *    (error relative to the tensor's largest magnitude), at most the case's `tol`.
 */
import type { Backend, Shape } from "../engine/backend.ts";
import { tensor } from "../engine/create.ts";
import { cpu } from "../engine/cpu.ts";
import { Random } from "../engine/random.ts";
import { noGrad, type Tensor } from "../engine/tensor.ts";
import { mul, sum } from "../engine/ops/index.ts";

export interface InputSpec {
  shape: Shape;
  /** Values are drawn uniformly from [lo, hi] (default [-1, 1]). */
  lo?: number;
  hi?: number;
  /** Set false for inputs that take no gradient (masks, indices). */
  grad?: boolean;
  /** Fixed values instead of random ones. */
  values?: ArrayLike<number>;
}

export interface OpCase {
  name: string;
  inputs: InputSpec[];
  fn: (...xs: Tensor[]) => Tensor;
  /** float32 device tolerance (see the definition above). */
  tol: number;
}

export const GRADCHECK_TOL = 1e-6;
const H = 1e-6;

function seedOf(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

export function caseValues(c: OpCase): Float64Array[] {
  const rng = new Random(seedOf(c.name));
  return c.inputs.map((s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (s.values) return Float64Array.from(s.values);
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = rng.uniform(s.lo ?? -1, s.hi ?? 1);
    return v;
  });
}

function outputWeights(c: OpCase, shape: Shape): Float64Array {
  const rng = new Random(seedOf(c.name) ^ 0x5bd1e995);
  const w = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < w.length; i++) w[i] = rng.uniform(0.5, 1.5) * (rng.next() < 0.5 ? -1 : 1);
  return w;
}

/** Max gradient-check error over all differentiable inputs (definition 1 above). */
export function gradcheck(c: OpCase): number {
  const values = caseValues(c);
  const xs = values.map((v, i) =>
    tensor(v, c.inputs[i].shape, { device: cpu, dtype: "float64", requiresGrad: c.inputs[i].grad !== false })
  );
  const y = c.fn(...xs);
  const w = tensor(outputWeights(c, y.shape), y.shape, { device: cpu, dtype: "float64" });
  sum(mul(y, w)).backward();
  const loss = () => noGrad(() => sum(mul(c.fn(...xs), w)).cpuData()[0]);
  let worst = 0;
  xs.forEach((x, k) => {
    if (c.inputs[k].grad === false) return;
    const data = x.cpuData(), analytic = x.grad!.cpuData();
    for (let i = 0; i < data.length; i++) {
      const keep = data[i];
      data[i] = keep + H;
      const up = loss();
      data[i] = keep - H;
      const down = loss();
      data[i] = keep;
      const numeric = (up - down) / (2 * H);
      const err = Math.abs(analytic[i] - numeric) / Math.max(1, Math.abs(analytic[i]), Math.abs(numeric));
      worst = Math.max(worst, err);
    }
  });
  return worst;
}

interface Run {
  output: Float64Array;
  grads: (Float64Array | null)[];
}

async function run(c: OpCase, device: Backend, dtype: "float32" | "float64"): Promise<Run> {
  const values = caseValues(c);
  const xs = values.map((v, i) =>
    tensor(v, c.inputs[i].shape, { device, dtype, requiresGrad: c.inputs[i].grad !== false })
  );
  const y = c.fn(...xs);
  const w = tensor(outputWeights(c, y.shape), y.shape, { device, dtype });
  const output = Float64Array.from(await y.data());
  sum(mul(y, w)).backward();
  const grads = await Promise.all(
    xs.map(async (x) => (x.grad ? Float64Array.from(await x.grad.data()) : null)),
  );
  return { output, grads };
}

export function maxRelativeToPeak(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} vs reference ${want.length}`);
  let peak = 0, diff = 0;
  for (let i = 0; i < want.length; i++) {
    peak = Math.max(peak, Math.abs(want[i]));
    const d = Math.abs(got[i] - want[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
  }
  return peak === 0 ? diff : diff / peak;
}

/** Device error (definition 2 above) of the forward output and of each input gradient. */
export async function deviceError(c: OpCase, device: Backend): Promise<{ output: number; grads: number[] }> {
  const ref = await run(c, cpu, "float64");
  const got = await run(c, device, "float32");
  return {
    output: maxRelativeToPeak(got.output, ref.output),
    grads: ref.grads.map((g, k) => (g ? maxRelativeToPeak(got.grads[k]!, g) : 0)),
  };
}
