/**
 * Adam on the WebAssembly backend, one SIMD loop per parameter (torch.optim.Adam, the formula of the
 * CPU reference in engine/optim.ts):
 *   g ← g + wd·p;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  p ← p − (lr / (1−β1^t)) m / (√v / √(1−β2^t) + ε)
 * 1 − β1 and 1 − β2 come from the host in float64: 1 − β2 in float32 would be off by 1.3e-5 relative.
 */
import type { Kernels } from "../engine/backend.ts";
import type { WasmContext } from "./context.ts";
import { at, elementLoop, kernel } from "./wat.ts";

const HYPER = [
  "stepSize",
  "rootCorrection2",
  "beta1",
  "beta2",
  "oneMinusBeta1",
  "oneMinusBeta2",
  "eps",
  "wd",
];

/** One Adam update of element $i, in `kind` (f32 or f32x4) arithmetic. */
function update(kind: "f32" | "f32x4"): string {
  const [load, store] = kind === "f32" ? ["f32.load", "f32.store"] : ["v128.load", "v128.store"];
  const h = (name: string) => kind === "f32" ? `(local.get $${name})` : `(f32x4.splat (local.get $${name}))`;
  const [p, g, m, v] = ["p", "g", "m", "v"].map((a) => at(`(local.get $${a})`, "(local.get $i)"));
  const t = kind === "f32" ? "S" : "V";
  return `
    (local.set $g${t} (${kind}.add (${load} ${g}) (${kind}.mul ${h("wd")} (${load} ${p}))))
    (local.set $m${t} (${kind}.add (${kind}.mul ${h("beta1")} (${load} ${m})) (${kind}.mul ${
    h("oneMinusBeta1")
  } (local.get $g${t}))))
    (local.set $v${t} (${kind}.add (${kind}.mul ${h("beta2")} (${load} ${v}))
      (${kind}.mul ${h("oneMinusBeta2")} (${kind}.mul (local.get $g${t}) (local.get $g${t})))))
    (${store} ${m} (local.get $m${t}))
    (${store} ${v} (local.get $v${t}))
    (${store} ${p} (${kind}.sub (${load} ${p}) (${kind}.div (${kind}.mul ${h("stepSize")} (local.get $m${t}))
      (${kind}.add (${kind}.div (${kind}.sqrt (local.get $v${t})) ${h("rootCorrection2")}) ${h("eps")}))))`;
}

export function adamWat(): string[] {
  return [kernel("adam", {
    ints: ["p", "g", "m", "v"],
    floats: HYPER,
    locals:
      "(local $i i32) (local $gS f32) (local $mS f32) (local $vS f32) (local $gV v128) (local $mV v128) (local $vV v128)",
  }, elementLoop(update("f32x4"), update("f32")))];
}

export function adamWasm(be: WasmContext): Pick<Kernels, "adam"> {
  return {
    adam(params, grads, m, v, { lr, beta1, beta2, eps, weightDecay, step }) {
      const hyper = [
        lr / (1 - beta1 ** step),
        Math.sqrt(1 - beta2 ** step),
        beta1,
        beta2,
        1 - beta1,
        1 - beta2,
        eps,
        weightDecay,
      ];
      params.forEach((p, k) => {
        const ptrs = [p, grads[k], m[k], v[k]].map((t) => be.ptr(t));
        be.runtime.run("adam", [...ptrs, ...hyper], p.size, 32768);
      });
    },
  };
}
