/**
 * Thin modules in the manner of torch.nn, only as much as the paper's models need.
 *
 * A module's parameters and submodules are its own fields, found by enumeration as PyTorch's
 * `__setattr__` registers them, so names come out as PyTorch prints them: a field `encoder` holding a
 * `Sequential` whose first layer is a `Conv2d` gives `encoder.0.weight`. Every `Tensor` field is a
 * parameter; a module that needs other tensors keeps them in `#private` fields, which are not
 * enumerated. Layers are built on a device (the default one unless `device` is given) and a model
 * moves between devices through `stateDict()` and `loadStateDict()`.
 */
import type { Shape } from "./backend.ts";
import type { TensorOptions } from "./create.ts";
import { defaultParameters } from "./init.ts";
import { copyOnto } from "./host.ts";
import {
  conv2d,
  convTranspose2d,
  flatten,
  leakyRelu,
  linear,
  maxPool2d,
  relu,
  sigmoid,
} from "./ops/index.ts";
import type { Random } from "./random.ts";
import { Tensor } from "./tensor.ts";

export abstract class Module {
  /** Fields in declaration order; Sequential overrides this with its numbered layers. */
  protected members(): [string, unknown][] {
    return Object.entries(this);
  }

  /** Every parameter under its dotted PyTorch name, in registration order. */
  *namedParameters(prefix = ""): Generator<[string, Tensor]> {
    for (const [name, value] of this.members()) {
      if (value instanceof Tensor) yield [prefix + name, value];
      else if (value instanceof Module) yield* value.namedParameters(`${prefix}${name}.`);
    }
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  /** The parameter tensors themselves (not copies), by name. */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries(this.namedParameters());
  }

  /**
   * Copy every parameter from `state` (any device or dtype) into this module, in place, so
   * optimisers holding the parameters see the new values. Strict, as PyTorch's default: a missing
   * or unexpected name, or any shape mismatch, is an error and nothing is loaded.
   */
  async loadStateDict(state: Record<string, Tensor>): Promise<void> {
    const own = this.stateDict();
    const missing = Object.keys(own).filter((k) => !(k in state));
    const unexpected = Object.keys(state).filter((k) => !(k in own));
    if (missing.length || unexpected.length) {
      throw new Error(
        `loadStateDict: missing [${missing.join(", ")}], unexpected [${unexpected.join(", ")}]`,
      );
    }
    const copies: [Tensor, Tensor][] = [];
    for (const [name, p] of Object.entries(own)) copies.push([p, await copyOnto(state[name], p, name)]);
    for (const [p, copy] of copies) {
      p.assign(copy);
      copy.dispose();
    }
  }

  /** Freeze (false) or unfreeze every parameter, as requires_grad_(). */
  requireGrad(flag = true): this {
    for (const p of this.parameters()) p.requireGrad(flag);
    return this;
  }

  dispose(): void {
    for (const p of this.parameters()) p.dispose();
  }
}

/** A module with a single-tensor forward, the kind `Sequential` chains. */
export type Layer = Module & { forward(x: Tensor): Tensor };

export interface LayerOptions extends Pick<TensorOptions, "device" | "dtype"> {
  /** Draws the initial weights (PyTorch's defaults, engine/init.ts). */
  rng: Random;
  bias?: boolean;
  /** Scales the weight's initial bound (engine/init.ts); 1, PyTorch's default, unless given. */
  weightGain?: number;
}

function layerParameters(
  weightShape: Shape,
  biasSize: number,
  { rng, bias = true, device, dtype, weightGain }: LayerOptions,
) {
  const p = defaultParameters(weightShape, bias ? biasSize : null, rng, {
    device,
    dtype: dtype ?? "float32",
    requiresGrad: true,
  }, weightGain);
  return { weight: p.weight.keep(), bias: p.bias?.keep() ?? null };
}

export interface Conv2dOptions extends LayerOptions {
  stride?: number;
  padding?: number;
}

export class Conv2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;

  constructor(inChannels: number, outChannels: number, kernelSize: number, opts: Conv2dOptions) {
    super();
    ({ weight: this.weight, bias: this.bias } = layerParameters(
      [outChannels, inChannels, kernelSize, kernelSize],
      outChannels,
      opts,
    ));
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  outputPadding?: number;
}

/** Weight [Cin, Cout, k, k] as PyTorch, so its fan_in is Cout·k·k. */
export class ConvTranspose2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  readonly outputPadding: number;

  constructor(inChannels: number, outChannels: number, kernelSize: number, opts: ConvTranspose2dOptions) {
    super();
    ({ weight: this.weight, bias: this.bias } = layerParameters(
      [inChannels, outChannels, kernelSize, kernelSize],
      outChannels,
      opts,
    ));
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.outputPadding = opts.outputPadding ?? 0;
  }

  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      outputPadding: this.outputPadding,
    });
  }
}

export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;

  constructor(inFeatures: number, outFeatures: number, opts: LayerOptions) {
    super();
    ({ weight: this.weight, bias: this.bias } = layerParameters(
      [outFeatures, inFeatures],
      outFeatures,
      opts,
    ));
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class LeakyReLU extends Module {
  constructor(readonly slope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return leakyRelu(x, this.slope);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class MaxPool2d extends Module {
  constructor(readonly kernel: number, readonly stride = kernel) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernel, this.stride);
  }
}

export class Flatten extends Module {
  constructor(readonly startDim = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim);
  }
}

/** Layers applied in order, named "0", "1", ... as nn.Sequential names them. */
export class Sequential extends Module {
  readonly layers: Layer[];

  constructor(...layers: Layer[]) {
    super();
    this.layers = layers;
  }

  protected override members(): [string, unknown][] {
    return this.layers.map((layer, i) => [String(i), layer]);
  }

  forward(x: Tensor): Tensor {
    return this.layers.reduce((y, layer) => layer.forward(y), x);
  }
}
