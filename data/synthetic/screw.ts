/**
 * The embedded object class: a threaded screw lying on a plain, unevenly lit background, at a random
 * position and angle (the paper's Fig. 9, MVTec AD's screw). In screw coordinates, s runs along the axis from
 * the head (s = 0) to the tip (s = length) and t across it; the outline is a half-width hw(s) per side:
 *
 *   head   superellipse, hw = R_head (1 - |2 s / L_head - 1|^4)^(1/4)
 *   neck   hw = R_shaft
 *   thread hw = root + depth * (1 - triangle((s - s_thread) / pitch + phase)), the far side half a pitch on
 *          (a helix seen from the side), tapering linearly to a point over the tip
 *
 * Defects change the outline itself: a flattened thread top (crests ground off near the tip) or a broken
 * thread on one side; a scratch is drawn over the body.
 */
import { Random } from "../../engine/random.ts";
import { drawScratch, innerPoint } from "./defects.ts";
import { lighting, sensorNoise } from "./noise.ts";

export const SCREW_DEFECTS = ["scratch", "thread_side", "thread_top"] as const;
export type ScrewDefect = typeof SCREW_DEFECTS[number];

interface ScrewShape {
  centre: [number, number];
  angle: number;
  length: number;
  headLength: number;
  headRadius: number;
  shaftRadius: number;
  threadStart: number;
  tipLength: number;
  depth: number;
  pitch: number;
  phase: number;
  tone: number;
  background: number;
  /** Thread crests ground off for s in [from, to]. */
  flattened?: [number, number];
  /** A broken thread: crests cut deeper than the root for s in [from, to] on one side (+1 or -1). */
  broken?: { side: number; from: number; to: number };
}

function drawShape(random: Random, size: number): ScrewShape {
  const length = random.uniform(0.38, 0.46) * size;
  const shaftRadius = length * random.uniform(0.065, 0.075);
  return {
    centre: innerPoint(random, size, 0.32),
    angle: random.uniform(0, 2 * Math.PI),
    length,
    headLength: length * 0.16,
    headRadius: length * random.uniform(0.15, 0.17),
    shaftRadius,
    threadStart: length * 0.3,
    tipLength: length * 0.12,
    depth: shaftRadius * 0.3,
    pitch: length * random.uniform(0.075, 0.09),
    phase: random.next(),
    tone: random.uniform(0.3, 0.42),
    background: random.uniform(0.72, 0.82),
  };
}

/** Distance from x to the nearest integer, doubled: a triangle wave from 0 (integers) to 1 (half-integers). */
function triangle(x: number): number {
  return 2 * Math.abs(x - Math.round(x));
}

/** The outline's half-width at s on one side (+1 or -1), and how strongly the thread shows in the shading. */
function halfWidth(shape: ScrewShape, s: number, side: number): { hw: number; thread: number } {
  const { length, headLength, headRadius, shaftRadius, threadStart, depth } = shape;
  if (s < 0 || s > length) return { hw: 0, thread: 0 };
  if (s < headLength) {
    return { hw: headRadius * (1 - Math.abs((2 * s) / headLength - 1) ** 4) ** 0.25, thread: 0 };
  }
  if (s < threadStart) return { hw: shaftRadius, thread: 0 };
  const root = shaftRadius - depth;
  let hw = root +
    depth * (1 - triangle((s - threadStart) / shape.pitch + shape.phase + (side > 0 ? 0 : 0.5)));
  let thread = 1;
  const { flattened, broken } = shape;
  if (flattened && s >= flattened[0] && s <= flattened[1]) {
    hw = Math.min(hw, root + 0.15 * depth);
    thread = 0.2;
  }
  if (broken && side === broken.side && s >= broken.from && s <= broken.to) {
    hw = Math.min(hw, root - 0.4 * depth);
  }
  const tip = (length - s) / shape.tipLength;
  return { hw: tip < 1 ? hw * tip : hw, thread };
}

/** Where pixel (x, y) falls on the screw: its coordinates s, t, the fraction it covers, the thread's strength. */
function locate(shape: ScrewShape, x: number, y: number) {
  const cos = Math.cos(shape.angle), sin = Math.sin(shape.angle);
  const dx = x - shape.centre[0], dy = y - shape.centre[1];
  const s = dx * cos + dy * sin + shape.length / 2, t = -dx * sin + dy * cos;
  const { hw, thread } = halfWidth(shape, s, t >= 0 ? 1 : -1);
  // A half-pixel soft edge; hw = 0 (beyond the head or the tip) covers nothing.
  return { s, t, thread, coverage: hw > 0 ? Math.min(1, Math.max(0, hw - Math.abs(t) + 0.5)) : 0 };
}

function paint(shape: ScrewShape, size: number, random: Random): Float32Array {
  const gain = lighting(random, size, random.uniform(0.05, 0.2), random.uniform(0.01, 0.03));
  const pixels = sensorNoise(random, size * size, random.uniform(0.008, 0.02));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const { s, t, thread, coverage } = locate(shape, x, y);
      let value = shape.background;
      if (coverage > 0) {
        // A lit cylinder, brighter towards a highlight line and darker at the silhouette, with slanted
        // thread ridges (the helix seen from the side).
        const radius = s < shape.headLength ? shape.headRadius : shape.shaftRadius;
        const n = Math.min(1, Math.abs(t) / radius);
        const highlight = 0.3 * Math.exp(-(((t / radius - 0.35) / 0.2) ** 2));
        const helix = (s - shape.threadStart) / shape.pitch + shape.phase + (0.25 * t) / radius;
        const metal = shape.tone * (0.55 + 0.45 * Math.sqrt(1 - n * n)) *
          (1 - 0.25 * thread * triangle(helix));
        value = coverage * (metal + highlight) + (1 - coverage) * shape.background;
      }
      pixels[y * size + x] += value * gain[y * size + x];
    }
  }
  return pixels;
}

/** A defect-free screw and, for `defect`, the same screw (same noise) with it. */
export function screw(seed: number, defectSeed: number, size: number, defect?: ScrewDefect) {
  const shape = drawShape(new Random(seed), size);
  const good = paint(shape, size, new Random(seed + 1));
  if (!defect) return { good };
  const random = new Random(defectSeed);
  const { length, pitch, threadStart, tipLength } = shape;
  if (defect === "scratch") {
    const defective = good.slice();
    const body = Float32Array.from(
      { length: size * size },
      (_, i) => locate(shape, i % size, Math.floor(i / size)).coverage,
    );
    const along = random.uniform(0.05, 0.9) * length - length / 2;
    const centre: [number, number] = [
      shape.centre[0] + along * Math.cos(shape.angle),
      shape.centre[1] + along * Math.sin(shape.angle),
    ];
    drawScratch(defective, size, random, centre, random.uniform(0.1, 0.25) * length, body);
    return { good, defective };
  }
  const from = defect === "thread_top"
    ? length - tipLength - random.uniform(1, 3) * pitch
    : random.uniform(threadStart + pitch, length - tipLength - 3 * pitch);
  const to = defect === "thread_top" ? length : from + random.uniform(0.6, 2.5) * pitch;
  const changed: ScrewShape = defect === "thread_top"
    ? { ...shape, flattened: [from, to] }
    : { ...shape, broken: { side: random.next() < 0.5 ? 1 : -1, from, to } };
  return { good, defective: paint(changed, size, new Random(seed + 1)) };
}
