/**
 * Defects drawn onto a gray size x size image in place: scratches, holes, stains and broken (missing)
 * threads. Each draws an opacity map `alpha` in [0, 1] and blends, so untouched pixels stay bit-identical
 * and the class's mask (the pixels whose 8-bit value changed) covers exactly what was altered.
 * Strength is drawn per defect, so some are bold and some subtle.
 */
import type { Random } from "../../engine/random.ts";

type Point = [number, number];

/** A random point at least `margin` (a fraction of the side) away from the border. */
export function innerPoint(random: Random, size: number, margin = 0.15): Point {
  return [random.uniform(margin, 1 - margin) * size, random.uniform(margin, 1 - margin) * size];
}

/**
 * A closed, bumpy outline: radius(phi) = r (1 + roughness * sum_k c_k cos(k phi + psi_k)), k = 2..4, with
 * |c_k| <= 1/3, so the radius stays within r (1 +- roughness).
 */
function blobRadius(random: Random, radius: number, roughness: number): (phi: number) => number {
  const terms = [2, 3, 4].map((k) => ({
    k,
    c: random.uniform(-1, 1) / 3,
    psi: random.uniform(0, 2 * Math.PI),
  }));
  return (phi) => radius * (1 + roughness * terms.reduce((s, t) => s + t.c * Math.cos(t.k * phi + t.psi), 0));
}

/** Calls visit(i, x, y) for the pixels of the square of half-side `reach` around `centre`, clipped. */
function forPixelsNear(
  size: number,
  centre: Point,
  reach: number,
  visit: (i: number, x: number, y: number) => void,
) {
  const x0 = Math.max(0, Math.floor(centre[0] - reach)),
    x1 = Math.min(size - 1, Math.ceil(centre[0] + reach));
  const y0 = Math.max(0, Math.floor(centre[1] - reach)),
    y1 = Math.min(size - 1, Math.ceil(centre[1] + reach));
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) visit(y * size + x, x, y);
}

/**
 * A scratch: a bright or dark stroke along a quadratic Bezier curve, `width` px wide with a 1 px soft edge.
 * `clip` (optional, per pixel in [0, 1]) limits it to part of the image, e.g. an object.
 */
export function drawScratch(
  pixels: Float32Array,
  size: number,
  random: Random,
  centre: Point,
  length: number,
  clip?: Float32Array,
): void {
  const heading = random.uniform(0, 2 * Math.PI);
  const dx = (Math.cos(heading) * length) / 2, dy = (Math.sin(heading) * length) / 2;
  const bend = random.uniform(-0.3, 0.3) * length;
  const ends: Point[] = [[centre[0] - dx, centre[1] - dy], [centre[0] + dx, centre[1] + dy]];
  const control: Point = [centre[0] - Math.sin(heading) * bend, centre[1] + Math.cos(heading) * bend];
  const halfWidth = random.uniform(0.5, 1.6) * (size / 512);
  const tone = random.next() < 0.5 ? 0.05 : 0.95, strength = random.uniform(0.3, 1);
  const alpha = new Float32Array(size * size);
  const steps = Math.ceil(length * 2);
  for (let s = 0; s <= steps; s++) {
    const t = s / steps;
    const point: Point = [0, 1].map((k) =>
      (1 - t) * (1 - t) * ends[0][k] + 2 * t * (1 - t) * control[k] + t * t * ends[1][k]
    ) as Point;
    forPixelsNear(size, point, halfWidth + 1, (i, x, y) => {
      const coverage = Math.min(1, Math.max(0, halfWidth + 0.5 - Math.hypot(x - point[0], y - point[1])));
      alpha[i] = Math.max(alpha[i], strength * coverage * (clip ? clip[i] : 1));
    });
  }
  blend(pixels, alpha, () => tone);
}

/** A hole: an irregular dark disc with a faintly lit floor. */
export function drawHole(pixels: Float32Array, size: number, random: Random): void {
  const centre = innerPoint(random, size);
  const r = random.uniform(5, 18) * (size / 512), radius = blobRadius(random, r, 0.3);
  const floor = random.uniform(0.03, 0.15);
  const alpha = new Float32Array(size * size);
  forPixelsNear(size, centre, 1.5 * r + 2, (i, x, y) => {
    const r = Math.hypot(x - centre[0], y - centre[1]);
    alpha[i] = Math.min(1, Math.max(0, radius(Math.atan2(y - centre[1], x - centre[0])) + 0.5 - r));
  });
  blend(pixels, alpha, () => floor + 0.03 * random.normal());
}

/** A stain or colour spot: a soft-edged blob that lightens or darkens what lies under it. */
export function drawStain(pixels: Float32Array, size: number, random: Random): void {
  const centre = innerPoint(random, size);
  const r = random.uniform(12, 45) * (size / 512), radius = blobRadius(random, r, 0.35);
  const shift = (random.next() < 0.5 ? -1 : 1) * random.uniform(0.06, 0.25);
  forPixelsNear(size, centre, 1.5 * r + 2, (i, x, y) => {
    // 0 on the outline, rising smoothly to 1 a third of the way in.
    const depth = 1 -
      Math.hypot(x - centre[0], y - centre[1]) / radius(Math.atan2(y - centre[1], x - centre[0]));
    const t = Math.min(1, Math.max(0, 3 * depth));
    pixels[i] += shift * t * t * (3 - 2 * t);
  });
}

/**
 * Broken or missing threads: a band along the stripes, scaled by the texture's thread width, where the
 * structure is flattened towards the image mean, as if threads were pulled out.
 */
export function drawBrokenThreads(
  pixels: Float32Array,
  size: number,
  random: Random,
  direction: number,
  thread: number,
): void {
  const centre = innerPoint(random, size);
  const halfLength = random.uniform(1.5, 4) * thread, halfWidth = random.uniform(0.5, 1.2) * thread;
  const keep = random.uniform(0.05, 0.5);
  const mean = pixels.reduce((s, v) => s + v, 0) / pixels.length;
  const cos = Math.cos(direction), sin = Math.sin(direction);
  const alpha = new Float32Array(size * size);
  forPixelsNear(size, centre, halfLength + halfWidth + 2, (i, x, y) => {
    const along = Math.abs((x - centre[0]) * cos + (y - centre[1]) * sin);
    const across = Math.abs(-(x - centre[0]) * sin + (y - centre[1]) * cos);
    const inside = Math.min(halfLength - along, halfWidth - across) / 2 + 0.5;
    alpha[i] = (1 - keep) * Math.min(1, Math.max(0, inside));
  });
  blend(pixels, alpha, () => mean);
}

/** pixels = (1 - alpha) * pixels + alpha * target */
function blend(pixels: Float32Array, alpha: Float32Array, target: (i: number) => number): void {
  for (let i = 0; i < pixels.length; i++) {
    if (alpha[i] > 0) pixels[i] += alpha[i] * (target(i) - pixels[i]);
  }
}
