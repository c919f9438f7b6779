/**
 * The models: Table 1's layer shapes, names and size; the STN's identity start, its exact inverse, its
 * agreement with the data's rotation convention; and STN+AE reducing to the plain AE at alpha = 0.
 */
import assert from "node:assert/strict";
import type { Backend } from "../engine/backend.ts";
import { randn, tensor } from "../engine/create.ts";
import { cpu } from "../engine/cpu.ts";
import { Random } from "../engine/random.ts";
import { noGrad, type Tensor } from "../engine/tensor.ts";
import { Autoencoder, parameterCount } from "../models/autoencoder.ts";
import { RotationStn, StnAutoencoder } from "../models/stn.ts";
import { createImage } from "../data/image.ts";
import { rotate as rotateImage } from "../data/transform.ts";
import { TEST_DEVICES } from "./devices.ts";

/** Table 1 (C, H, W after each encoder convolution) for a 128x128x3 input and d = 100. */
const TABLE_1 = [
  [32, 64, 64],
  [32, 32, 32],
  [32, 32, 32],
  [64, 16, 16],
  [64, 16, 16],
  [128, 8, 8],
  [64, 8, 8],
  [32, 8, 8],
  [100, 1, 1],
];
/** Table 1's kernels; with the channels above they give the parameter count. */
const TABLE_1_KERNELS = [4, 4, 3, 4, 3, 4, 3, 3, 8];

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

Deno.test("autoencoder: Table 1 output shapes for 128x128x3, a mirrored decoder, PyTorch names", () => {
  const ae = new Autoencoder({ channels: 3, rng: new Random(1) });
  const encoderShapes: number[][] = [], decoderShapes: number[][] = [];
  noGrad(() => {
    let y = randn([1, 3, 128, 128], new Random(2));
    for (const layer of ae.encoder.layers) {
      y = layer.forward(y);
      if (layer.constructor.name === "Conv2d") encoderShapes.push(y.shape.slice(1));
    }
    for (const layer of ae.decoder.layers) {
      y = layer.forward(y);
      if (layer.constructor.name === "ConvTranspose2d") decoderShapes.push(y.shape.slice(1));
    }
    const out = y.cpuData();
    assert.ok(out.every((v) => v > 0 && v < 1), "the output passes through a sigmoid");
  });
  assert.deepEqual(encoderShapes, TABLE_1);
  // The decoder retraces the encoder's sizes back to the input.
  assert.deepEqual(decoderShapes, [...TABLE_1.slice(0, -1).reverse(), [3, 128, 128]]);

  // nn.Sequential numbering: convolutions at even indices, activations between them.
  const names = [...ae.namedParameters()].map(([name]) => name);
  const convIndices = Array.from({ length: 9 }, (_, i) => 2 * i);
  assert.deepEqual(names, [
    ...convIndices.flatMap((i) => [`encoder.${i}.weight`, `encoder.${i}.bias`]),
    ...convIndices.flatMap((i) => [`decoder.${i}.weight`, `decoder.${i}.bias`]),
  ]);
  assert.equal(ae.decoder.layers.at(-1)!.constructor.name, "Sigmoid");
  assert.equal(ae.encoder.layers.at(-1)!.constructor.name, "Conv2d", "no activation on the latent code");

  const channels = [3, ...TABLE_1.map(([c]) => c)];
  const weights = TABLE_1_KERNELS.reduce((n, k, i) => n + channels[i] * channels[i + 1] * k * k, 0);
  // Encoder biases: each layer's output channels; decoder biases: the mirrored outputs, ending at 3.
  const biases = channels.slice(1).reduce((a, b) => a + b, 0) +
    channels.slice(0, -1).reduce((a, b) => a + b, 0);
  const count = parameterCount(ae);
  console.log(`Table-1 autoencoder, 3 channels, d = 100: ${count} parameters`);
  assert.equal(count, 2 * weights + biases);
});

Deno.test("autoencoder: one channel, another latent size, and a reduced input size", () => {
  const gray = new Autoencoder({ channels: 1, latent: 20, rng: new Random(3) });
  const small = new Autoencoder({ channels: 3, size: 32, base: 4, latent: 6, rng: new Random(3) });
  noGrad(() => {
    const x = randn([2, 1, 128, 128], new Random(4));
    assert.deepEqual(gray.encode(x).shape, [2, 20, 1, 1]);
    assert.deepEqual(gray.forward(x).shape, [2, 1, 128, 128]);
    assert.deepEqual(small.forward(randn([2, 3, 32, 32], new Random(5))).shape, [2, 3, 32, 32]);
  });
  assert.throws(
    () => new Autoencoder({ channels: 3, size: 40, rng: new Random(0) }),
    /size 40 must be a multiple of 16/,
  );
});

/** A smooth image on a zero-padded canvas: a diagonal cosine inside the central square of half-width 0.6. */
function paddedImage(device: Backend, size: number): Tensor {
  const data = new Float32Array(size * size);
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      const x = (2 * i + 1) / size - 1, y = (2 * j + 1) / size - 1;
      if (Math.max(Math.abs(x), Math.abs(y)) < 0.6) data[j * size + i] = 0.5 + 0.4 * Math.cos(6 * x + 3 * y);
    }
  }
  return tensor(data, [1, 1, size, size], { device });
}

/**
 * Bilinear interpolation of f on a grid of spacing h errs by at most h²/8 (|f_xx| + |f_yy|) whatever the
 * rotation of the axes, i.e. h²/8 · 0.4 (6² + 3²) for the cosine above; a round trip resamples twice.
 */
const TWO_RESAMPLINGS_TOL = 2 * ((2 / 64) ** 2 / 8) * 0.4 * (6 ** 2 + 3 ** 2);

/** Max |a - b| over the pixels whose normalised coordinates lie within `halfWidth` of the centre. */
function centralError(a: ArrayLike<number>, b: ArrayLike<number>, size: number, halfWidth: number): number {
  let worst = 0;
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      const x = (2 * i + 1) / size - 1, y = (2 * j + 1) / size - 1;
      if (Math.hypot(x, y) < halfWidth) worst = Math.max(worst, Math.abs(a[j * size + i] - b[j * size + i]));
    }
  }
  return worst;
}

for (const device of TEST_DEVICES) {
  Deno.test(
    `${device.name}: a fresh STN predicts alpha = 0 and returns its input`,
    { ignore: device.ignore },
    async () => {
      const backend = await device.get();
      const stn = new RotationStn({ channels: 3, inputSize: 32, rng: new Random(6), device: backend });
      const x = tensor(Array.from({ length: 2 * 3 * 48 * 48 }, (_, i) => Math.sin(i)), [2, 3, 48, 48], {
        device: backend,
      });
      const { alpha, normalised } = noGrad(() => stn.forward(x));
      assert.deepEqual(Array.from(await alpha.data()), [0, 0]);
      // Sampling at exact pixel centres: float rounding only (values are within [-1, 1]).
      assert.ok(maxAbsDifference(await normalised.data(), await x.data()) <= 1e-5);
    },
  );

  Deno.test(`${device.name}: STN rotate then rotateBack is the identity up to interpolation`, {
    ignore: device.ignore,
  }, async () => {
    const backend = await device.get();
    const size = 64;
    const x = paddedImage(backend, size);
    const input = await x.data();
    const roundTrip = async (stn: RotationStn, radians: number) => {
      const alpha = tensor([radians], [1], { device: backend });
      return await noGrad(() => stn.rotateBack(stn.rotate(x, alpha), alpha)).data();
    };
    const exact = new RotationStn({ channels: 1, rng: new Random(7), device: backend });
    const naive = new RotationStn({ channels: 1, sampler: "naive", rng: new Random(7), device: backend });
    // A quarter turn maps pixel centres onto pixel centres: the round trip is exact to float rounding.
    assert.ok(maxAbsDifference(await roundTrip(exact, Math.PI / 2), input) <= 1e-5);
    // At 30 degrees, inside the content (radius 0.55 < 0.6), only interpolation error is left.
    const exactError = centralError(await roundTrip(exact, Math.PI / 6), input, size, 0.55);
    const naiveError = centralError(await roundTrip(naive, Math.PI / 6), input, size, 0.55);
    console.log(`30-degree round trip, max error in the content: exact ${exactError}, naive ${naiveError}`);
    assert.ok(exactError <= TWO_RESAMPLINGS_TOL, `exact sampler round trip error ${exactError}`);
    assert.ok(
      naiveError > 3 * exactError,
      `naive ${naiveError} should be far worse than exact ${exactError}`,
    );
  });
}

Deno.test("STN: He initialisation of the ReLU layers (bound √(6 / fan_in)), a zero regression layer", () => {
  const stn = new RotationStn({ channels: 1, rng: new Random(10) });
  const params = stn.parameters();
  const weights = params.slice(0, -2).filter((p) => p.ndim > 1);
  assert.equal(weights.length, 6); // four convolutions, two hidden fully-connected layers
  for (const w of weights) {
    const fanIn = w.size / w.shape[0], bound = Math.sqrt(6 / fanIn), values = w.cpuData();
    let squares = 0, largest = 0;
    for (const v of values) {
      squares += v * v;
      largest = Math.max(largest, Math.abs(v));
    }
    // U(±b) has variance b²/3 = 2 / fan_in; over n ≥ 72 draws the sample variance's relative std is
    // √(0.8 / n) ≤ 0.11, so 40% is over three standard deviations. PyTorch's default would give a sixth.
    assert.ok(largest <= bound, `${w.shape}: max |w| ${largest} above ${bound}`);
    assert.ok(Math.abs(squares / values.length / (2 / fanIn) - 1) < 0.4, `${w.shape}: variance`);
  }
  for (const p of params.slice(-2)) assert.ok(p.cpuData().every((v) => v === 0));
});

Deno.test("autoencoder: He's bound for LeakyReLU(0.2) by default, PyTorch's default with init: \"torch\"", () => {
  const weightsOf = (ae: Autoencoder) => ae.parameters().filter((p) => p.ndim > 1);
  const he = weightsOf(new Autoencoder({ channels: 1, rng: new Random(12) }));
  const torch = weightsOf(new Autoencoder({ channels: 1, init: "torch", rng: new Random(12) }));
  assert.equal(he.length, 18); // nine convolutions, nine transposed convolutions
  for (const [k, weights] of [he, torch].entries()) {
    for (const w of weights) {
      // PyTorch's fan_in: size(1) x kh x kw, so Cout·k² for a transposed convolution's [Cin, Cout, k, k].
      const fanIn = w.size / w.shape[0];
      const variance = k === 0 ? 2 / (1 + 0.2 ** 2) / fanIn : 1 / (3 * fanIn);
      const bound = Math.fround(Math.sqrt(3 * variance)), values = w.cpuData();
      let squares = 0, largest = 0;
      for (const v of values) {
        squares += v * v;
        largest = Math.max(largest, Math.abs(v));
      }
      // Every layer has at least 512 draws (the first and last: 32·1·4·4), whose sample variance has a
      // relative std of √(0.8 / n) ≤ 0.04: 25% is over six of them. He's is 3.8 times PyTorch's default.
      assert.ok(largest <= bound, `${w.shape}: max |w| ${largest} above ${bound}`);
      assert.ok(Math.abs(squares / values.length / variance - 1) < 0.25, `${w.shape}: variance`);
    }
  }
  assert.throws(
    () => new Autoencoder({ channels: 1, init: "xavier" as "he", rng: new Random(0) }),
    /init "xavier", expected "he" or "torch"/,
  );
});

Deno.test("STN rotation by -a undoes the data pipeline's rotation by a (orientation a + alpha)", () => {
  const size = 64, degrees = 37;
  const image = createImage(1, size, size);
  image.data.set(paddedImage(cpu, size).cpuData());
  const recorded = rotateImage(image, degrees);
  const stn = new RotationStn({ channels: 1, rng: new Random(8) });
  const x = tensor(recorded.data, [1, 1, size, size]);
  const back = noGrad(() => stn.rotate(x, tensor([(-degrees * Math.PI) / 180], [1]))).cpuData();
  assert.ok(centralError(back, image.data, size, 0.55) <= TWO_RESAMPLINGS_TOL);
});

Deno.test("STN+AE: at alpha = 0 its output is the plain AE's with the same weights", () => {
  const options = { channels: 3 as const, size: 32, base: 4, latent: 8 };
  const plain = new Autoencoder({ ...options, rng: new Random(9) });
  const withStn = new StnAutoencoder({ ...options, inputSize: 32, rng: new Random(9) });
  const x = randn([2, 3, 32, 32], new Random(10));
  const names = [...withStn.namedParameters()].map(([name]) => name);
  assert.deepEqual(names.slice(0, 36), [...plain.namedParameters()].map(([name]) => name));
  assert.ok(names.slice(36).every((name) => name.startsWith("stn.localisation.")));
  noGrad(() => {
    const pass = withStn.pass(x);
    assert.deepEqual(Array.from(pass.alpha.cpuData()), [0, 0]);
    // The two identity samplings round only (the sigmoid output is in (0, 1)).
    assert.ok(maxAbsDifference(pass.output.cpuData(), plain.forward(x).cpuData()) <= 1e-6);
  });
});
