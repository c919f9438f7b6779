/**
 * Geometric transforms of channels-first images, the steps of the paper's preparation: crop, zero padding,
 * rotation and resizing. Masks go through them as extra planes, so images and masks move identically.
 */
import { createImage, type Image } from "./image.ts";

export function crop(image: Image, x0: number, y0: number, height: number, width: number): Image {
  if (x0 < 0 || y0 < 0 || x0 + width > image.width || y0 + height > image.height) {
    throw new Error(
      `crop ${width}x${height} at (${x0}, ${y0}) does not fit in a ${image.width}x${image.height} image`,
    );
  }
  const out = createImage(image.channels, height, width);
  for (let c = 0; c < image.channels; c++) {
    for (let y = 0; y < height; y++) {
      const from = (c * image.height + y0 + y) * image.width + x0;
      out.data.set(image.data.subarray(from, from + width), (c * height + y) * width);
    }
  }
  return out;
}

/**
 * Places the image in the middle of a size x size zero canvas. With an odd margin the extra zero row and
 * column go after the image (128 in 181: 26 before, 27 after).
 */
export function zeroPad(image: Image, size: number): Image {
  const out = createImage(image.channels, size, size);
  const x0 = Math.floor((size - image.width) / 2), y0 = Math.floor((size - image.height) / 2);
  for (let c = 0; c < image.channels; c++) {
    for (let y = 0; y < image.height; y++) {
      const from = (c * image.height + y) * image.width;
      out.data.set(image.data.subarray(from, from + image.width), (c * size + y0 + y) * size + x0);
    }
  }
  return out;
}

/**
 * Rotation by `degrees` in the project's convention, that of PyTorch's affine_grid + grid_sample with
 * align_corners=false, bilinear, zeros outside: out(p) = in(R(a) p), R(a) = [[cos a, -sin a], [sin a, cos a]],
 * where p = (x, y) is a pixel centre in normalised coordinates, x = (2i + 1) / W - 1, y = (2j + 1) / H - 1.
 * Rotating by a and then by b equals rotating by a + b, so rotating by -a undoes a (up to interpolation).
 */
export function rotate(image: Image, degrees: number): Image {
  const { channels, height: h, width: w, data } = image;
  const out = createImage(channels, h, w);
  const cos = Math.cos((degrees * Math.PI) / 180), sin = Math.sin((degrees * Math.PI) / 180);
  const plane = h * w;
  const at = (offset: number, xi: number, yi: number) =>
    xi >= 0 && yi >= 0 && xi < w && yi < h ? data[offset + yi * w + xi] : 0;
  for (let j = 0; j < h; j++) {
    const y = (2 * j + 1) / h - 1;
    for (let i = 0; i < w; i++) {
      const x = (2 * i + 1) / w - 1;
      // The source position in pixels: the inverse of the normalisation above.
      const sx = ((cos * x - sin * y + 1) * w - 1) / 2, sy = ((sin * x + cos * y + 1) * h - 1) / 2;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      for (let c = 0; c < channels; c++) {
        const o = c * plane;
        out.data[o + j * w + i] = (1 - fy) * ((1 - fx) * at(o, x0, y0) + fx * at(o, x0 + 1, y0)) +
          fy * ((1 - fx) * at(o, x0, y0 + 1) + fx * at(o, x0 + 1, y0 + 1));
      }
    }
  }
  return out;
}

/** Taps of a 1-D resampling from n to m samples: output i reads input[start[i] + k] with weight weights[i][k]. */
interface Taps {
  start: Int32Array;
  weights: Float64Array[];
}

/**
 * Antialiased linear resampling (PIL's bilinear resize, torch's interpolate(antialias=True)): output i is
 * centred at (i + 0.5) * n / m in input pixel units, and reads a triangle kernel whose half-width is the
 * scale n / m when shrinking (so it averages the area it covers) and 1 when enlarging (plain bilinear).
 * Weights are renormalised where the kernel overhangs the border.
 */
function resampleTaps(n: number, m: number): Taps {
  const scale = n / m, support = Math.max(scale, 1);
  const start = new Int32Array(m);
  const weights: Float64Array[] = [];
  for (let i = 0; i < m; i++) {
    const centre = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support)), hi = Math.min(n, Math.ceil(centre + support));
    const w = new Float64Array(hi - lo);
    for (let k = 0; k < w.length; k++) w[k] = Math.max(0, 1 - Math.abs((lo + k + 0.5 - centre) / support));
    const total = w.reduce((a, b) => a + b, 0);
    start[i] = lo;
    weights.push(w.map((v) => v / total));
  }
  return { start, weights };
}

/** Resizes to height x width, rows first, then columns (the kernel is separable). */
export function resize(image: Image, height: number, width: number): Image {
  const { channels, height: h, width: w, data } = image;
  const across = resampleTaps(w, width), down = resampleTaps(h, height);
  const wide = createImage(channels, h, width);
  for (let row = 0; row < channels * h; row++) {
    for (let i = 0; i < width; i++) {
      const taps = across.weights[i], from = row * w + across.start[i];
      let sum = 0;
      for (let k = 0; k < taps.length; k++) sum += taps[k] * data[from + k];
      wide.data[row * width + i] = sum;
    }
  }
  const out = createImage(channels, height, width);
  for (let c = 0; c < channels; c++) {
    for (let j = 0; j < height; j++) {
      const taps = down.weights[j];
      for (let i = 0; i < width; i++) {
        let sum = 0;
        for (let k = 0; k < taps.length; k++) {
          sum += taps[k] * wide.data[(c * h + down.start[j] + k) * width + i];
        }
        out.data[(c * height + j) * width + i] = sum;
      }
    }
  }
  return out;
}
