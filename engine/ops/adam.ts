/**
 * One Adam step (Kingma & Ba, bias-corrected, torch.optim.Adam), in place. Not differentiable: the
 * optimiser (`engine/optim.ts`) calls the kernel directly. Weight decay is L2 added to the gradient:
 *
 *   g ← g + λp
 *   m ← β₁m + (1 − β₁)g        v ← β₂v + (1 − β₂)g²
 *   p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
 */
import type { Kernels } from "../backend.ts";

export const adamCpu: Pick<Kernels, "adam"> = {
  adam(params, grads, m, v, { lr, beta1, beta2, eps, weightDecay, step }) {
    const stepSize = lr / (1 - beta1 ** step);
    const rootCorrection2 = Math.sqrt(1 - beta2 ** step);
    params.forEach((p, k) => {
      const ps = p.cpuData(), gs = grads[k].cpuData(), ms = m[k].cpuData(), vs = v[k].cpuData();
      for (let i = 0; i < ps.length; i++) {
        const g = gs[i] + weightDecay * ps[i];
        ms[i] = beta1 * ms[i] + (1 - beta1) * g;
        vs[i] = beta2 * vs[i] + (1 - beta2) * g * g;
        ps[i] -= (stepSize * ms[i]) / (Math.sqrt(vs[i]) / rootCorrection2 + eps);
      }
    });
  },
};
