/**
 * The convolutional autoencoder of Table 1 (after Bergmann et al. 2018), with a decoder that mirrors it.
 *
 * Encoder, for a 128x128xC input (`base` = 32 channels, latent d = 100):
 *   conv 4x4 s2 p1 -> 64x64x32,  conv 4x4 s2 p1 -> 32x32x32,  conv 3x3 s1 p1 -> 32x32x32,
 *   conv 4x4 s2 p1 -> 16x16x64,  conv 3x3 s1 p1 -> 16x16x64,  conv 4x4 s2 p1 -> 8x8x128,
 *   conv 3x3 s1 p1 -> 8x8x64,    conv 3x3 s1 p1 -> 8x8x32,    conv 8x8 valid -> 1x1xd.
 * The decoder runs the same list backwards with transposed convolutions (a transposed convolution with a
 * layer's kernel, stride and padding inverts its output size), ending in a sigmoid. LeakyReLU(0.2) follows
 * every layer except the latent one and the last decoder one. Parameters are named as in an nn.Sequential
 * (`encoder.0.weight`, ..., `decoder.16.bias`), so PyTorch safetensors map one to one.
 *
 * Initialisation (the paper states none): He's, for LeakyReLU(0.2), on every conv and deconv weight,
 * U(±gain·√(3 / fan_in)) with gain = √(2 / (1 + 0.2²)), as `kaiming_uniform_(w, a=0.2)` draws it; biases keep
 * PyTorch's U(±1/√fan_in). With PyTorch's default (`init: "torch"`, what the parity fixtures use) the AE sits
 * on the average-image plateau far longer: docs/initialisation.md has the measured steps per class.
 */
import type { Backend } from "../engine/backend.ts";
import { Conv2d, ConvTranspose2d, type Layer, LeakyReLU, Module, Sequential, Sigmoid } from "../engine/nn.ts";
import type { Random } from "../engine/random.ts";
import type { Tensor } from "../engine/tensor.ts";

export const LEAKY_SLOPE = 0.2;

/** "he": He's bound for LeakyReLU(0.2) (the default); "torch": PyTorch's default U(±1/√fan_in). */
export type AutoencoderInit = "he" | "torch";

/** √(2 / (1 + a²)) · √3: He's uniform bound over PyTorch's default one, 1/√fan_in, for LeakyReLU(a). */
export function heWeightGain(slope = LEAKY_SLOPE): number {
  return Math.sqrt(2 / (1 + slope * slope)) * Math.sqrt(3);
}

export interface AutoencoderOptions {
  channels: 1 | 3;
  /** Latent size d (Table 1: 100). */
  latent?: number;
  /** Input side; the latent convolution's kernel is size / 16 (Table 1: 128, kernel 8). */
  size?: number;
  /** Channels of the first layer; the deeper ones have 2x and 4x as many (Table 1: 32). */
  base?: number;
  /** Weight initialisation (default "he"). */
  init?: AutoencoderInit;
  rng: Random;
  device?: Backend;
}

export interface ConvSpec {
  out: number;
  kernel: number;
  stride: number;
  padding: number;
}

/** Table 1, scaled by `base`; the last layer's output channels are the latent size. */
export function encoderSpecs(base: number, latent: number, size: number): ConvSpec[] {
  const s = (out: number, kernel: number, stride: number, padding: number) => ({
    out,
    kernel,
    stride,
    padding,
  });
  return [
    s(base, 4, 2, 1),
    s(base, 4, 2, 1),
    s(base, 3, 1, 1),
    s(2 * base, 4, 2, 1),
    s(2 * base, 3, 1, 1),
    s(4 * base, 4, 2, 1),
    s(2 * base, 3, 1, 1),
    s(base, 3, 1, 1),
    s(latent, size / 16, 1, 0),
  ];
}

export class Autoencoder extends Module {
  encoder: Sequential;
  decoder: Sequential;

  constructor(
    { channels, latent = 100, size = 128, base = 32, init = "he", rng, device }: AutoencoderOptions,
  ) {
    super();
    if (init !== "he" && init !== "torch") {
      throw new Error(`Autoencoder: init "${init}", expected "he" or "torch"`);
    }
    const weightGain = init === "he" ? heWeightGain() : 1;
    if (!Number.isInteger(size / 16) || size < 16) {
      throw new Error(`Autoencoder: input size ${size} must be a multiple of 16 (four stride-2 layers)`);
    }
    const specs = encoderSpecs(base, latent, size);
    const inputs = [channels, ...specs.map((s) => s.out)];
    const last = specs.length - 1;
    const encoder: Layer[] = specs.flatMap((s, i) => {
      const conv = new Conv2d(inputs[i], s.out, s.kernel, {
        stride: s.stride,
        padding: s.padding,
        rng,
        device,
        weightGain,
      });
      return i === last ? [conv] : [conv, new LeakyReLU(LEAKY_SLOPE)];
    });
    // Decoder layer k undoes encoder layer (last - k): in and out channels swapped, same geometry.
    const decoder: Layer[] = specs.toReversed().flatMap((s, k) => {
      const i = last - k;
      const geometry = { stride: s.stride, padding: s.padding, rng, device, weightGain };
      const deconv = new ConvTranspose2d(s.out, inputs[i], s.kernel, geometry);
      return [deconv, k === last ? new Sigmoid() : new LeakyReLU(LEAKY_SLOPE)];
    });
    this.encoder = new Sequential(...encoder);
    this.decoder = new Sequential(...decoder);
  }

  /** [N, C, H, W] -> the latent code [N, d, 1, 1]. */
  encode(x: Tensor): Tensor {
    return this.encoder.forward(x);
  }

  /** The latent code [N, d, 1, 1] -> an image [N, C, H, W] in (0, 1). */
  decode(z: Tensor): Tensor {
    return this.decoder.forward(z);
  }

  forward(x: Tensor): Tensor {
    return this.decode(this.encode(x));
  }
}

/** Number of scalars in a module's parameters. */
export function parameterCount(module: Module): number {
  return module.parameters().reduce((n, p) => n + p.size, 0);
}
