/**
 * Small builders for the WAT text of the kernels. Every kernel is an exported function whose last two
 * parameters are `$start` and `$end`, the range of output items it computes (see `runtime.ts`).
 * Pointers are byte offsets into the shared memory; sizes and strides count float32 elements.
 */

/** `(func $name (export "name") ...)` with i32 parameters `ints`, f32 parameters `floats`, then $start, $end. */
export function kernel(
  name: string,
  { ints = [], floats = [], locals = "" }: { ints?: string[]; floats?: string[]; locals?: string },
  body: string,
): string {
  const params = [...ints.map((p) => `(param $${p} i32)`), ...floats.map((p) => `(param $${p} f32)`)];
  return `(func $${name} (export "${name}") ${params.join(" ")} (param $start i32) (param $end i32)
    ${locals}
    ${body})`;
}

/** The byte address of float32 element `index` (a WAT i32 expression) of the array at `base`. */
export const at = (base: string, index: string) => `(i32.add ${base} (i32.shl ${index} (i32.const 2)))`;

/**
 * `for (i = from; i < to; i += step) body` over the i32 local `$i`, as a WAT block; `to` is evaluated
 * once per test, so it may read locals.
 */
export function forLoop(i: string, from: string, to: string, step: number, body: string): string {
  const label = i.replace("$", "");
  return `(local.set ${i} ${from})
    (block $${label}_done (loop $${label}_next
      (br_if $${label}_done (i32.ge_s (i32.add (local.get ${i}) (i32.const ${step - 1})) ${to}))
      ${body}
      (local.set ${i} (i32.add (local.get ${i}) (i32.const ${step})))
      (br $${label}_next)))`;
}

/** Elements [start, end) of contiguous arrays: four at a time with `vector` (if given), then `scalar`. */
export function elementLoop(vector: string | null, scalar: string): string {
  return `${
    vector
      ? forLoop("$i", "(local.get $start)", "(local.get $end)", 4, vector)
      : "(local.set $i (local.get $start))"
  }
    ${forLoop("$i", "(local.get $i)", "(local.get $end)", 1, scalar)}`;
}

/**
 * The i32 value of an f64 WAT expression holding an integer in (−2^31, 2^31), e.g. after f64.floor.
 * Adding 1.5·2^52 puts the integer in the low mantissa bits, which are then read as an i32. V8 spends
 * about 5 ns on i32.trunc_f64_s and i32.trunc_sat_f64_s (range checks), 4 times a floor. Outside that
 * range, or for NaN, the result is meaningless: use it only for coordinates already tested to be inside.
 */
export const integralToI32 = (x: string) =>
  `(i32.wrap_i64 (i64.reinterpret_f64 (f64.add ${x} (f64.const 6755399441055744))))`;
