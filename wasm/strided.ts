/**
 * Loops over strided views, shared by broadcasting (binary, expand) and windows (slice, pad, concat).
 * A view is a shape with one stride per operand (0 re-reads a broadcast dim). `stridedPlan` merges
 * dims that are contiguous in every operand and drops size-1 dims, so most ops become one or two dims;
 * the kernels take four dims [n0, n1, n2, n3] and parallelise over the n0·n1·n2 rows, running the
 * innermost dim with SIMD when each operand's stride there is 0 or 1. A view of more than four dims
 * after merging is cut into four-dim pieces by the caller's loop (`forEachPiece`).
 */
import { at, forLoop, kernel } from "./wat.ts";

export interface StridedPlan {
  shape: number[];
  strides: number[][];
}

/** Merge contiguous dims and drop size-1 dims of a view with one stride list per operand. */
export function stridedPlan(shape: readonly number[], strides: readonly (readonly number[])[]): StridedPlan {
  const dims = shape.map((n, d) => ({ n, s: strides.map((st) => st[d]) })).filter((d) => d.n !== 1);
  const merged: { n: number; s: number[] }[] = [];
  for (const d of dims) {
    const last = merged.at(-1);
    if (last && last.s.every((s, k) => s === d.s[k] * d.n)) {
      last.n *= d.n;
      last.s = d.s;
    } else merged.push({ n: d.n, s: [...d.s] });
  }
  if (merged.length === 0) merged.push({ n: 1, s: strides.map(() => 0) });
  return { shape: merged.map((d) => d.n), strides: strides.map((_, k) => merged.map((d) => d.s[k])) };
}

/**
 * Call `fn` once per four-dim piece of the plan: leading dims beyond four are looped here, each piece
 * with its operands' element offsets.
 */
export function forEachPiece(
  plan: StridedPlan,
  fn: (shape: number[], strides: number[][], offsets: number[]) => void,
): void {
  const lead = Math.max(0, plan.shape.length - 4);
  const shape = [...new Array(Math.max(0, 4 - plan.shape.length)).fill(1), ...plan.shape.slice(lead)];
  const strides = plan.strides.map((s) => [...new Array(4 - (s.length - lead)).fill(0), ...s.slice(lead)]);
  const count = plan.shape.slice(0, lead).reduce((a, b) => a * b, 1);
  for (let p = 0; p < count; p++) {
    let r = p;
    const offsets = plan.strides.map(() => 0);
    for (let d = lead - 1; d >= 0; d--) {
      const k = r % plan.shape[d];
      r = Math.floor(r / plan.shape[d]);
      plan.strides.forEach((s, o) => (offsets[o] += k * s[d]));
    }
    fn(shape, strides, offsets);
  }
}

/** Rows of a four-dim view per parallel chunk: about 16k elements. */
export const rowGrain = (shape: number[]) => Math.max(1, Math.floor(16384 / shape[3]));

/**
 * The kernel `name(ptrs..., n1, n2, n3, strides of each operand (4 each), start, end)` over rows
 * [start, end). `operands` names the pointers; the last one is the output, whose strides are passed too.
 * `vector(loads)` and `scalar(loads)` give the output value from the operands' loaded values.
 */
export function stridedKernel(
  name: string,
  operands: string[],
  scalar: (values: string[]) => string,
  vector: (values: string[]) => string,
): string {
  const inputs = operands.slice(0, -1), out = operands.at(-1)!;
  const strideNames = operands.flatMap((o) => [0, 1, 2, 3].map((d) => `${o}${d}`));
  const base = (o: string) =>
    `(i32.add (i32.mul (local.get $i0) (local.get $${o}0))
      (i32.add (i32.mul (local.get $i1) (local.get $${o}1)) (i32.mul (local.get $i2) (local.get $${o}2))))`;
  const addr = (o: string) => at(`(local.get $${o}p)`, `(i32.mul (local.get $j) (local.get $${o}3))`);
  const scalarBody = `(f32.store ${addr(out)} ${scalar(inputs.map((o) => `(f32.load ${addr(o)})`))})`;
  // One SIMD loop per pattern of 0/1 inner strides of the inputs (the output's is 1 in every use).
  const patterns = Array.from({ length: 2 ** inputs.length }, (_, m) => inputs.map((_, k) => (m >> k) & 1));
  const simd = patterns.map((bits) => {
    const test = inputs.map((o, k) => `(i32.eq (local.get $${o}3) (i32.const ${bits[k]}))`)
      .reduce((a, b) => `(i32.and ${a} ${b})`);
    const loads = inputs.map((o, k) =>
      bits[k]
        ? `(v128.load ${at(`(local.get $${o}p)`, "(local.get $j)")})`
        : `(f32x4.splat (f32.load (local.get $${o}p)))`
    );
    return `(if (i32.and ${test} (i32.eq (local.get $${out}3) (i32.const 1))) (then
        ${
      forLoop(
        "$j",
        "(i32.const 0)",
        "(local.get $n3)",
        4,
        `(v128.store ${at(`(local.get $${out}p)`, "(local.get $j)")} ${vector(loads)})`,
      )
    }))`;
  });
  return kernel(
    name,
    {
      ints: [...operands, "n1", "n2", "n3", ...strideNames],
      locals: `(local $r i32) (local $i0 i32) (local $i1 i32) (local $i2 i32) (local $j i32) ` +
        operands.map((o) => `(local $${o}p i32)`).join(" "),
    },
    `${
      forLoop(
        "$r",
        "(local.get $start)",
        "(local.get $end)",
        1,
        `
      (local.set $i2 (i32.rem_u (local.get $r) (local.get $n2)))
      (local.set $i1 (i32.rem_u (i32.div_u (local.get $r) (local.get $n2)) (local.get $n1)))
      (local.set $i0 (i32.div_u (local.get $r) (i32.mul (local.get $n1) (local.get $n2))))
      ${operands.map((o) => `(local.set $${o}p ${at(`(local.get $${o})`, base(o))})`).join("\n      ")}
      (local.set $j (i32.const 0))
      ${simd.join("\n      ")}
      ${forLoop("$j", "(local.get $j)", "(local.get $n3)", 1, scalarBody)}`,
      )
    }`,
  );
}

/** Arguments of a stridedKernel call for one piece: pointers (offset), n1..n3, then every stride. */
export function stridedArgs(
  ptrs: number[],
  shape: number[],
  strides: number[][],
  offsets: number[],
): number[] {
  return [...ptrs.map((p, k) => p + 4 * offsets[k]), shape[1], shape[2], shape[3], ...strides.flat()];
}
