/**
 * The two embedded texture classes. Both have ONE dominant direction, drawn uniformly per image, so the
 * orientation spread is what a spatial transformer can remove. Lengths are set in pixels of a 512 image:
 * preparation shrinks by 512/256 and then 181/128, about 2.83 in all, so 140 px becomes 50 px in a prepared
 * 128x128 patch.
 *
 * Scale. The Table-1 autoencoder sees a patch through an 8x8 map (16 px per cell) and a 100-d code. Its
 * dominant structure must span several cells to be learned within the budgets we run: with ribs of a 12 px
 * period (the first version of texture1) the plain AE stayed on the average image for 4,000 training images,
 * and at 30 px it still did, while at 50 px it left the plateau within 1,600 images and reached 0.12 of the
 * average image's MSE by 3,200 (PyTorch, He init, Adam lr 2e-4, batch 16; docs/textures.md). So the
 * dominant, oriented structure is broad (a period of 3 or more cells), and the fine detail that makes it a
 * fabric (threads, fibres, grain) is low in contrast: the paper's woven fabrics also owe their SSIM of 0.85
 * to structure the AE can follow, with the finest weave near SSIM's contrast constant.
 *
 *   texture1, "wide rib": raised ribs of a 140-160 px period, woven of thread segments that are offset from
 *     rib to rib (the twill step), with fibre noise running along the ribs.
 *   texture2, "brushed": random-phase striations, a sum of cosines across the brushing direction with periods
 *     of 120-240 px, fine streaks on top and a slow waviness of the strokes.
 *
 * Both get uneven lighting and per-pixel sensor noise.
 */
import type { Random } from "../../engine/random.ts";
import { lighting, sensorNoise, valueNoise } from "./noise.ts";

export interface Texture {
  size: number;
  /** Gray values, row-major size x size; not clamped. */
  pixels: Float32Array;
  /** Direction along the stripes, radians from the x axis. */
  direction: number;
  /** Width of a thread in pixels: the scale of a broken-thread defect. */
  thread: number;
}

/** Stripe coordinates of pixel (x, y): across the stripes (u) and along them (v), from the image centre. */
function stripeFrame(direction: number, size: number) {
  const cos = Math.cos(direction), sin = Math.sin(direction), c = size / 2;
  return {
    across: (x: number, y: number) => -(x - c) * sin + (y - c) * cos,
    along: (x: number, y: number) => (x - c) * cos + (y - c) * sin,
  };
}

/** Fills a texture from value(u, v), then applies lighting and sensor noise. */
function shade(random: Random, size: number, direction: number, value: (u: number, v: number) => number) {
  const frame = stripeFrame(direction, size);
  const gain = lighting(random, size, random.uniform(0.05, 0.25), random.uniform(0.02, 0.06));
  const pixels = sensorNoise(random, size * size, random.uniform(0.01, 0.025));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      pixels[i] += value(frame.across(x, y), frame.along(x, y)) * gain[i];
    }
  }
  return pixels;
}

export function twillRib(random: Random, size: number): Texture {
  const scale = size / 512;
  const direction = random.uniform(0, 2 * Math.PI);
  const period = random.uniform(140, 160) * scale;
  // Thread segments along the ribs, a fine scale at low contrast (6-8 px in a prepared patch).
  const segment = random.uniform(16, 22) * scale;
  const mean = random.uniform(0.42, 0.55), contrast = random.uniform(0.28, 0.36);
  const fibres = valueNoise(random, 256, 16);
  // A raised cosine to the power 1.5: crests narrower than troughs.
  const rib = periodic((t) => (0.5 + 0.5 * Math.cos(2 * Math.PI * t)) ** 1.5);
  const thread = periodic((t) => 0.5 + 0.5 * Math.cos(2 * Math.PI * t));
  const pixels = shade(random, size, direction, (u, v) => {
    const height = rib(u / period);
    // Each rib's segments start half a segment after its neighbour's: the twill step.
    const step = (Math.round(u / period) * segment) / 2;
    return mean + contrast * (height - 0.5) + 0.07 * height * (thread((v + step) / segment) - 0.5) +
      0.035 * fibres(u / 2, v / 32);
  });
  return { size, pixels, direction, thread: period / 3 };
}

export function brushed(random: Random, size: number): Texture {
  const scale = size / 512;
  const direction = random.uniform(0, 2 * Math.PI);
  const striations = tabulate(cosineSum(random, 6, 1 / (240 * scale), 1 / (120 * scale)), size);
  const streaks = tabulate(cosineSum(random, 12, 1 / (8 * scale), 1 / (3 * scale)), size);
  const waveLength = random.uniform(250, 400) * scale, waveAmplitude = random.uniform(0.5, 2) * scale;
  const wavePhase = random.uniform(0, 2 * Math.PI);
  const mean = random.uniform(0.4, 0.55), contrast = random.uniform(0.1, 0.14);
  const pixels = shade(random, size, direction, (u, v) => {
    const stroke = u + waveAmplitude * Math.sin((2 * Math.PI * v) / waveLength + wavePhase);
    return mean + contrast * striations(stroke) + 0.035 * streaks(stroke);
  });
  return { size, pixels, direction, thread: 35 * scale };
}

/**
 * A random-phase profile f(u) = sum_k a_k cos(2 pi f_k u + phi_k), f_k uniform in [fMin, fMax], scaled to
 * unit variance (each term has variance a_k^2 / 2).
 */
function cosineSum(random: Random, terms: number, fMin: number, fMax: number): (u: number) => number {
  const frequencies = Array.from({ length: terms }, () => 2 * Math.PI * random.uniform(fMin, fMax));
  const phases = Array.from({ length: terms }, () => random.uniform(0, 2 * Math.PI));
  const amplitudes = Array.from({ length: terms }, () => random.uniform(0.5, 1));
  const norm = 1 / Math.sqrt(amplitudes.reduce((s, a) => s + (a * a) / 2, 0));
  return (u) => {
    let sum = 0;
    for (let k = 0; k < terms; k++) sum += amplitudes[k] * Math.cos(frequencies[k] * u + phases[k]);
    return norm * sum;
  };
}

/*
 * Lookup tables read by linear interpolation: Math.cos costs more per pixel than all the rest of a texture,
 * and a sum of 20 cosines far more.
 */

/** f over [-extent, extent], sampled every quarter pixel. */
function tabulate(f: (u: number) => number, extent: number): (u: number) => number {
  const perPixel = 4;
  const table = Float32Array.from({ length: 2 * extent * perPixel + 2 }, (_, i) => f(i / perPixel - extent));
  return (u) => {
    const t = (u + extent) * perPixel, i = Math.floor(t);
    return table[i] + (t - i) * (table[i + 1] - table[i]);
  };
}

/** A function of period 1, sampled 1024 times per period. */
function periodic(f: (t: number) => number): (t: number) => number {
  const n = 1024;
  const table = Float32Array.from({ length: n + 1 }, (_, i) => f(i / n));
  return (t) => {
    const x = (t - Math.floor(t)) * n, i = Math.floor(x);
    return table[i] + (x - i) * (table[i + 1] - table[i]);
  };
}
