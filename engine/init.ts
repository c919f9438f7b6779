/**
 * PyTorch's default parameter initialisation for Conv2d, ConvTranspose2d and Linear
 * (`reset_parameters`), drawn from the seeded generator of engine/random.ts.
 *
 * The weight gets kaiming_uniform_(a = √5): bound = gain·√(3 / fan_in) with gain = √(2 / (1 + a²)),
 * which for a = √5 is 1/√fan_in. The bias gets U(−1/√fan_in, 1/√fan_in) with the weight's fan_in.
 * fan_in is `_calculate_fan_in_and_fan_out`'s: size(1) × the receptive field (kh·kw). For a
 * ConvTranspose2d weight [Cin, Cout, kh, kw] that is Cout·kh·kw, as PyTorch computes it.
 */
import type { Shape } from "./backend.ts";
import { type TensorOptions, uniform } from "./create.ts";
import type { Random } from "./random.ts";
import { shapeString, type Tensor } from "./tensor.ts";

/** size(1) × the product of the dims after it (the receptive field). */
export function fanIn(weightShape: Shape): number {
  if (weightShape.length < 2) {
    throw new Error(`fanIn: weight shape ${shapeString(weightShape)} needs at least 2 dims`);
  }
  return weightShape.slice(1).reduce((a, b) => a * b, 1);
}

/** 1/√fan_in: the bound of both the default weight and the default bias. */
export function defaultBound(weightShape: Shape): number {
  return 1 / Math.sqrt(fanIn(weightShape));
}

/**
 * A weight and (when `biasSize` is given) a bias, both U(−1/√fan_in, 1/√fan_in); the weight is drawn first.
 * `weightGain` scales the weight's bound: √6 gives He's U(±√(6 / fan_in)) for a layer followed by a ReLU.
 */
export function defaultParameters(
  weightShape: Shape,
  biasSize: number | null,
  rng: Random,
  opts: TensorOptions = {},
  weightGain = 1,
): { weight: Tensor; bias: Tensor | null } {
  const bound = defaultBound(weightShape);
  const weight = uniform(weightShape, -weightGain * bound, weightGain * bound, rng, opts);
  const bias = biasSize === null ? null : uniform([biasSize], -bound, bound, rng, opts);
  return { weight, bias };
}
