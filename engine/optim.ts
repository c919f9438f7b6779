/**
 * Optimisers with torch.optim semantics. Weight decay is L2 regularisation added to the gradient
 * (g ← g + λp), not decoupled as in AdamW.
 *
 * Adam (Kingma & Ba, bias-corrected), per parameter with its own step count t: the kernel and its
 * formula are in `ops/adam.ts`.
 * SGD with momentum μ (dampening 0, no Nesterov):
 *   b ← μb + g                  p ← p − lr·b
 *
 * `state()` names tensors as torch's optimizer.state_dict()["state"] does ("0.exp_avg", "0.step"),
 * so a checkpoint can store them next to the weights.
 */
import type { AdamHyper } from "./backend.ts";
import { copyOnto } from "./host.ts";
import { add, mul, sub } from "./ops/elementwise.ts";
import { noGrad, type Tensor, tidy } from "./tensor.ts";

function expectFinite(optimiser: string, name: string, value: number, bound: "> 0" | ">= 0"): void {
  if (!(Number.isFinite(value) && (bound === "> 0" ? value > 0 : value >= 0))) {
    throw new Error(`${optimiser}: ${name} ${value} must be finite and ${bound}`);
  }
}

/** What both optimisers share: the parameter list, the learning rate and zeroGrad. */
abstract class Optimiser {
  #lr = 0;

  constructor(readonly params: readonly Tensor[], lr: number) {
    this.lr = lr;
  }

  get lr(): number {
    return this.#lr;
  }
  set lr(value: number) {
    expectFinite(this.constructor.name, "learning rate", value, "> 0");
    this.#lr = value;
  }

  /** Release every parameter's gradient (the next backward starts from none). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  abstract step(): void;
  abstract state(): Record<string, Tensor>;
  abstract loadState(state: Record<string, Tensor>): Promise<void>;
}

function stateEntry(state: Record<string, Tensor>, key: string, optimiser: string): Tensor {
  const t = state[key];
  if (!t) throw new Error(`${optimiser}.loadState: no "${key}" in the state`);
  return t;
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export class Adam extends Optimiser {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Per parameter, as torch: a parameter without a gradient is skipped and its t does not advance. */
  #steps: number[];
  #m: (Tensor | null)[];
  #v: (Tensor | null)[];

  constructor(
    params: readonly Tensor[],
    { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0 }: AdamOptions = {},
  ) {
    super(params, lr);
    [this.beta1, this.beta2] = betas;
    betas.forEach((b, i) => {
      if (!(b >= 0 && b < 1)) throw new Error(`Adam: beta${i + 1} ${b} must be in [0, 1)`);
    });
    expectFinite("Adam", "eps", eps, ">= 0");
    expectFinite("Adam", "weightDecay", weightDecay, ">= 0");
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.#steps = params.map(() => 0);
    this.#m = params.map(() => null);
    this.#v = params.map(() => null);
  }

  /** One update of every parameter that has a gradient; one kernel call per device and step count. */
  step(): void {
    const groups = new Map<string, number[]>();
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      this.#m[i] ??= p.device.full(p.shape, 0, p.dtype).keep();
      this.#v[i] ??= p.device.full(p.shape, 0, p.dtype).keep();
      const key = `${p.device.name} ${++this.#steps[i]}`;
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    for (const members of groups.values()) {
      const hyper: AdamHyper = {
        lr: this.lr,
        beta1: this.beta1,
        beta2: this.beta2,
        eps: this.eps,
        weightDecay: this.weightDecay,
        step: this.#steps[members[0]],
      };
      const params = members.map((i) => this.params[i]);
      params[0].device.adam(
        params,
        params.map((p) => p.grad!),
        members.map((i) => this.#m[i]!),
        members.map((i) => this.#v[i]!),
        hyper,
      );
    }
  }

  /** m and v are the optimiser's own tensors; each step count is a new scalar tensor for the caller. */
  state(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    this.params.forEach((p, i) => {
      if (!this.#steps[i]) return;
      out[`${i}.step`] = p.device.fromData(Float32Array.of(this.#steps[i]), []);
      out[`${i}.exp_avg`] = this.#m[i]!;
      out[`${i}.exp_avg_sq`] = this.#v[i]!;
    });
    return out;
  }

  /** Restore `state()` (possibly read from a file, on another device): m and v are copied. */
  async loadState(state: Record<string, Tensor>): Promise<void> {
    for (const [i, p] of this.params.entries()) {
      const step = state[`${i}.step`];
      if (!step) continue;
      const m = await copyOnto(stateEntry(state, `${i}.exp_avg`, "Adam"), p, `${i}.exp_avg`);
      const v = await copyOnto(stateEntry(state, `${i}.exp_avg_sq`, "Adam"), p, `${i}.exp_avg_sq`);
      this.#m[i]?.dispose();
      this.#v[i]?.dispose();
      this.#m[i] = m.keep();
      this.#v[i] = v.keep();
      this.#steps[i] = await step.item();
    }
  }
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

export class SGD extends Optimiser {
  readonly momentum: number;
  readonly weightDecay: number;
  #buffers: (Tensor | null)[];

  constructor(params: readonly Tensor[], { lr, momentum = 0, weightDecay = 0 }: SgdOptions) {
    super(params, lr);
    expectFinite("SGD", "momentum", momentum, ">= 0");
    expectFinite("SGD", "weightDecay", weightDecay, ">= 0");
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.#buffers = params.map(() => null);
  }

  step(): void {
    noGrad(() =>
      this.params.forEach((p, i) => {
        if (!p.grad) return;
        const g = p.grad;
        tidy(() => {
          let d = this.weightDecay ? add(g, mul(p, this.weightDecay)) : g;
          if (this.momentum) {
            // torch starts the buffer at g; μ·0 + g is exactly g, so a zero start is the same.
            const b = (this.#buffers[i] ??= p.device.full(p.shape, 0, p.dtype).keep());
            b.assign(add(mul(b, this.momentum), d));
            d = b;
          }
          p.assign(sub(p, mul(d, this.lr)));
        });
      })
    );
  }

  state(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    this.#buffers.forEach((b, i) => {
      if (b) out[`${i}.momentum_buffer`] = b;
    });
    return out;
  }

  async loadState(state: Record<string, Tensor>): Promise<void> {
    for (const [i, p] of this.params.entries()) {
      const saved = state[`${i}.momentum_buffer`];
      if (!saved) continue;
      const b = await copyOnto(saved, p, `${i}.momentum_buffer`);
      this.#buffers[i]?.dispose();
      this.#buffers[i] = b.keep();
    }
  }
}
