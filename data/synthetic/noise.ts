/** Random fields shared by the synthetic classes: smooth value noise and uneven lighting. */
import type { Random } from "../../engine/random.ts";

/**
 * Value noise: standard normal values on a cellsX x cellsY lattice that wraps around, read between lattice
 * points with smoothstep-weighted bilinear interpolation (continuous, with a continuous gradient along axes).
 * The returned function takes coordinates in lattice cells.
 */
export function valueNoise(random: Random, cellsX: number, cellsY: number): (x: number, y: number) => number {
  const lattice = Float32Array.from({ length: cellsX * cellsY }, () => random.normal());
  const wrap = (v: number, n: number) => ((v % n) + n) % n;
  const smooth = (t: number) => t * t * (3 - 2 * t);
  return (x, y) => {
    const x0 = Math.floor(x), y0 = Math.floor(y);
    const tx = smooth(x - x0), ty = smooth(y - y0);
    const xa = wrap(x0, cellsX), xb = wrap(x0 + 1, cellsX);
    const ya = wrap(y0, cellsY) * cellsX, yb = wrap(y0 + 1, cellsY) * cellsX;
    const top = lattice[ya + xa] + tx * (lattice[ya + xb] - lattice[ya + xa]);
    const bottom = lattice[yb + xa] + tx * (lattice[yb + xb] - lattice[yb + xa]);
    return top + ty * (bottom - top);
  };
}

/**
 * A multiplicative lighting field over a size x size image: a linear gradient in a random direction plus a
 * soft blotch field, gain = 1 + gradient * (position from the centre) + blotch * noise, as an uneven lamp gives.
 */
export function lighting(random: Random, size: number, gradient: number, blotch: number): Float32Array {
  const direction = random.uniform(0, 2 * Math.PI);
  const gx = (gradient * Math.cos(direction)) / size, gy = (gradient * Math.sin(direction)) / size;
  const noise = valueNoise(random, 4, 4);
  const gain = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      gain[y * size + x] = 1 + gx * (x - size / 2) + gy * (y - size / 2) +
        blotch * noise((4 * x) / size, (4 * y) / size);
    }
  }
  return gain;
}

/**
 * Per-pixel sensor noise with standard deviation `sigma`. Each value is a triangular variate, the sum of two
 * 16-bit uniforms taken from one 32-bit draw, scaled by sqrt(6) to unit variance: close enough to Gaussian for
 * sensor grain and several times cheaper than Box-Muller, which matters at 262,144 pixels an image.
 */
export function sensorNoise(random: Random, count: number, sigma: number): Float32Array {
  const noise = new Float32Array(count);
  const scale = Math.sqrt(6) * sigma;
  for (let i = 0; i < count; i++) {
    const bits = random.u32();
    noise[i] = scale * ((bits & 0xffff) / 65536 + (bits >>> 16) / 65536 - 1);
  }
  return noise;
}
