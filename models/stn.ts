/**
 * The rotation-only spatial transformer (Sections 4-6) and the STN+AE of Fig. 2.
 *
 * Localisation network (Table 2 gives only the layer types; the sizes are ours, kept small because it runs
 * on every training step): the input is first resized to 64x64 (bilinear) and standardised per image, then
 *   4 x [conv 3x3 p1 -> ReLU -> maxpool 2]  with 8, 16, 32, 32 channels   (64 -> 32 -> 16 -> 8 -> 4)
 *   flatten (32 x 4 x 4 = 512) -> fc 64 -> ReLU -> fc 32 -> ReLU -> fc 1 = alpha (radians).
 * The last fc starts at zero (weights and bias), so alpha = 0 and the STN starts as the identity.
 *
 * theta(alpha) is Eq. 8; affineGrid + gridSample with it computes out(p) = in(R(alpha) p). Its inverse is
 * theta(-alpha), exactly, since R(-alpha) R(alpha) = I: no numerical matrix inversion. The sampler is
 * selectable: "exact" (PyTorch's grid_sample, pixel centres) or "naive" (the TensorFlow STN the paper
 * criticises, which expects alignCorners grids).
 */
import type { Backend, Sampler } from "../engine/backend.ts";
import { Conv2d, Flatten, type Layer, Linear, MaxPool2d, Module, ReLU, Sequential } from "../engine/nn.ts";
import {
  add,
  affineGrid,
  div,
  gridSample,
  interpolate,
  mean,
  neg,
  reshape,
  rotationTheta,
  sqrt,
  square,
  sub,
} from "../engine/ops/index.ts";
import type { Random } from "../engine/random.ts";
import type { Tensor } from "../engine/tensor.ts";
import { Autoencoder, type AutoencoderOptions } from "./autoencoder.ts";

export interface StnOptions {
  channels: 1 | 3;
  /** Side the input is resized to before the localisation network (64). */
  inputSize?: number;
  /** Output channels of the four conv blocks (8, 16, 32, 32). */
  convChannels?: readonly number[];
  /** Units of the two hidden fully-connected layers (64, 32). */
  hiddenUnits?: readonly number[];
  sampler?: Sampler;
  rng: Random;
  device?: Backend;
}

/** Keeps a constant image (rms 0) finite when standardised. */
const STANDARDISE_EPS = 1e-5;

export class RotationStn extends Module {
  localisation: Sequential;
  readonly inputSize: number;
  readonly sampler: Sampler;

  constructor(
    {
      channels,
      inputSize = 64,
      convChannels = [8, 16, 32, 32],
      hiddenUnits = [64, 32],
      sampler = "exact",
      rng,
      device,
    }: StnOptions,
  ) {
    super();
    const pooled = inputSize / 16;
    if (convChannels.length !== 4 || hiddenUnits.length !== 2 || !Number.isInteger(pooled)) {
      throw new Error(
        `RotationStn: ${convChannels.length} conv blocks, ${hiddenUnits.length} hidden layers, input size ` +
          `${inputSize}; expected 4 and 2 (Table 2) and a multiple of 16 (four 2x2 poolings)`,
      );
    }
    // He initialisation of the ReLU layers' weights: U(±√(6 / fan_in)), √6 times PyTorch's default bound.
    // With the default (weight variance 1/(3 fan_in): each ReLU layer keeps a sixth of the signal's variance
    // while the biases keep theirs) the features reaching the regression layer hardly depend on the image:
    // on the embedded screw alpha stayed the same for every image through 720 pre-training steps.
    const he = { rng, device, weightGain: Math.sqrt(6) };
    const convs = [channels, ...convChannels].slice(0, -1).flatMap((cin, i): Layer[] => [
      new Conv2d(cin, convChannels[i], 3, { padding: 1, ...he }),
      new ReLU(),
      new MaxPool2d(2),
    ]);
    const units = [convChannels[3] * pooled * pooled, ...hiddenUnits];
    const hidden = hiddenUnits.flatMap((out, i): Layer[] => [new Linear(units[i], out, he), new ReLU()]);
    const regression = new Linear(hiddenUnits[1], 1, { rng, device });
    for (const p of regression.parameters()) {
      const zero = p.device.full(p.shape, 0, p.dtype);
      p.assign(zero);
      zero.dispose();
    }
    this.localisation = new Sequential(...convs, new Flatten(), ...hidden, regression);
    this.inputSize = inputSize;
    this.sampler = sampler;
  }

  /**
   * The rotation alpha [N] (radians) that normalises each image of x [N, C, H, W]. The network sees each
   * image resized and standardised, z = (x - mean) / rms. Without that, brightness dominates what the
   * randomly initialised features see and alpha moves alike for every image: on the embedded textures,
   * 300 pre-training steps took the resultant length of the normalised orientations from 0 to 0.96 and 0.92
   * with it, while without it texture2 kept a constant alpha for 180 steps.
   */
  angle(x: Tensor): Tensor {
    const small = x.shape[2] === this.inputSize && x.shape[3] === this.inputSize
      ? x
      : interpolate(x, { size: [this.inputSize, this.inputSize] });
    const centred = sub(small, mean(small, [1, 2, 3], true));
    const standardised = div(centred, add(sqrt(mean(square(centred), [1, 2, 3], true)), STANDARDISE_EPS));
    return reshape(this.localisation.forward(standardised), [x.shape[0]]);
  }

  /** out(p) = x(R(alpha) p), per image. */
  rotate(x: Tensor, alpha: Tensor): Tensor {
    const alignCorners = this.sampler === "naive";
    const grid = affineGrid(rotationTheta(alpha), x.shape, { alignCorners });
    return gridSample(x, grid, { alignCorners, sampler: this.sampler });
  }

  /** The exact inverse of `rotate(., alpha)`: the rotation by -alpha. */
  rotateBack(y: Tensor, alpha: Tensor): Tensor {
    return this.rotate(y, neg(alpha));
  }

  /** The normalised image and the angle that produced it. */
  forward(x: Tensor): { alpha: Tensor; normalised: Tensor } {
    const alpha = this.angle(x);
    return { alpha, normalised: this.rotate(x, alpha) };
  }
}

/** Every intermediate of one STN+AE pass (Fig. 2). */
export interface StnPass {
  alpha: Tensor;
  normalised: Tensor;
  /** The decoder's output, in the normalised orientation. */
  reconstruction: Tensor;
  /** The reconstruction rotated back to the input's orientation: what the loss compares with the input. */
  output: Tensor;
}

/**
 * STN+AE: rotate by theta(alpha), encode, decode, rotate back by theta(-alpha). The autoencoder's parameters
 * keep the plain AE's names (`encoder.*`, `decoder.*`); the STN's are `stn.localisation.*`.
 */
export class StnAutoencoder extends Autoencoder {
  stn: RotationStn;

  constructor(
    options: AutoencoderOptions & Pick<StnOptions, "inputSize" | "convChannels" | "hiddenUnits" | "sampler">,
  ) {
    super(options);
    this.stn = new RotationStn(options);
  }

  pass(x: Tensor): StnPass {
    const { alpha, normalised } = this.stn.forward(x);
    const reconstruction = this.decode(this.encode(normalised));
    return { alpha, normalised, reconstruction, output: this.stn.rotateBack(reconstruction, alpha) };
  }

  override forward(x: Tensor): Tensor {
    return this.pass(x).output;
  }
}
