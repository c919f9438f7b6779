/**
 * The spatial transformer's sampler: PyTorch's F.affine_grid and F.grid_sample (bilinear, zeros
 * padding, both alignCorners settings), and the TensorFlow STN sampler the paper criticises.
 *
 * affineGrid. Output pixel (i, j) of an H x W image has the normalised coordinates
 *   x_j = (2j + 1) / W - 1,  y_i = (2i + 1) / H - 1    alignCorners false (pixel centres)
 *   x_j = 2j / (W - 1) - 1,  y_i = 2i / (H - 1) - 1    alignCorners true (0 for a size of 1)
 * and grid[n, i, j] = θ_n b, b = (x_j, y_i, 1). It is linear in θ:
 *   dL/dθ_n[r, k] = Σ_{i,j} dL/dgrid[n, i, j, r] · b_k
 *
 * gridSample. A grid point g = (gx, gy) maps to pixel coordinates (u, v); along each axis the two
 * taps are pixels a0 ≤ a1 with 1-D weights w0 = a1 - u, w1 = u - a0 (so ∂w0/∂u = -1, ∂w1/∂u = 1):
 *   y[n, c, p] = Σ_{k,l ∈ {0,1}} wu_k wv_l · x[n, c, v_l, u_k]
 *   dL/dx[n, c, v_l, u_k] += wu_k wv_l · dL/dy[n, c, p]                    (a scatter)
 *   dL/dgx = du/dgx · Σ_c dL/dy · Σ_{k,l} (±1)_k wv_l · x[v_l, u_k]        (−1 for k = 0, +1 for k = 1)
 *   dL/dgy likewise with the roles of u and v swapped.
 * The samplers differ only in the map g -> u and in the taps:
 *   "exact" (PyTorch):  u = (gx + 1) / 2 · (W - 1) (alignCorners) or ((gx + 1) W - 1) / 2 (not),
 *                       a0 = ⌊u⌋, a1 = a0 + 1, and a tap outside the image reads 0.
 *   "naive" (github.com/daviddao/spatial-transformer-tensorflow, transformer.py `_interpolate`):
 *                       u = (gx + 1) W / 2 whatever alignCorners says, a0 = clamp(⌊u⌋), a1 = clamp(⌊u⌋ + 1)
 *                       into [0, W - 1], with the weights above taken from the CLAMPED taps.
 *   That TF code builds its grid with linspace(-1, 1), i.e. affineGrid with alignCorners true, and maps
 *   it onto [0, W] instead of [0, W - 1]: the identity grid samples pixel j at j W / (W - 1), a
 *   stretch about the top-left corner, so a rotation there also scales and shifts the image. Where the
 *   taps clamp (u < 0 or u ≥ W - 1) the weights cancel to 0, with a jump at the border.
 *
 * rotationTheta(α) = [[cos α, -sin α, 0], [sin α, cos α, 0]] (Eq. 8): with affineGrid and gridSample
 * it computes out(p) = in(R(α) p), the project's rotation convention.
 */
import type { Kernels, Sampler, Shape } from "../backend.ts";
import { hostTensor, newArray } from "../host.ts";
import { record, shapeString, type Tensor } from "../tensor.ts";
import { cos, neg, sin } from "./elementwise.ts";
import { concat, reshape } from "./shape.ts";

/** Normalised coordinate of pixel j of `size` in the affine grid. */
function baseCoordinate(j: number, size: number, alignCorners: boolean): number {
  if (!alignCorners) return (2 * j + 1) / size - 1;
  return size > 1 ? (2 * j) / (size - 1) - 1 : 0;
}

/** The two taps of one axis: pixel indices, their weights, and du/dg (∂weight/∂g = ∓ scale). */
interface AxisTaps {
  index: [number, number];
  weight: [number, number];
  scale: number;
}

function axisTaps(g: number, size: number, alignCorners: boolean, sampler: Sampler): AxisTaps {
  if (sampler === "naive") {
    const u = ((g + 1) * size) / 2, a0 = Math.floor(u);
    const lo = Math.min(Math.max(a0, 0), size - 1), hi = Math.min(Math.max(a0 + 1, 0), size - 1);
    return { index: [lo, hi], weight: [hi - u, u - lo], scale: size / 2 };
  }
  const scale = alignCorners ? (size - 1) / 2 : size / 2;
  const u = alignCorners ? (g + 1) * scale : ((g + 1) * size - 1) / 2;
  const a0 = Math.floor(u);
  return { index: [a0, a0 + 1], weight: [a0 + 1 - u, u - a0], scale };
}

/** ∂w_k/∂u for the taps k = 0, 1. */
const TAP_SLOPE = [-1, 1];

type SamplerKernels = "affineGrid" | "affineGridGrad" | "gridSample" | "gridSampleGrad";

export const gridSampleCpu: Pick<Kernels, SamplerKernels> = {
  affineGrid(theta, size, alignCorners) {
    const [n, , h, w] = size, t = theta.cpuData(), grid = newArray(theta.dtype, n * h * w * 2);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < h; i++) {
        const y = baseCoordinate(i, h, alignCorners);
        for (let j = 0; j < w; j++) {
          const x = baseCoordinate(j, w, alignCorners), o = ((b * h + i) * w + j) * 2;
          grid[o] = t[b * 6] * x + t[b * 6 + 1] * y + t[b * 6 + 2];
          grid[o + 1] = t[b * 6 + 3] * x + t[b * 6 + 4] * y + t[b * 6 + 5];
        }
      }
    }
    return hostTensor(theta, grid, [n, h, w, 2]);
  },
  affineGridGrad(gGrid, alignCorners) {
    const [n, h, w] = gGrid.shape, g = gGrid.cpuData(), gTheta = newArray(gGrid.dtype, n * 6);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < h; i++) {
        const y = baseCoordinate(i, h, alignCorners);
        for (let j = 0; j < w; j++) {
          const x = baseCoordinate(j, w, alignCorners), o = ((b * h + i) * w + j) * 2;
          for (let r = 0; r < 2; r++) {
            gTheta[b * 6 + r * 3] += g[o + r] * x;
            gTheta[b * 6 + r * 3 + 1] += g[o + r] * y;
            gTheta[b * 6 + r * 3 + 2] += g[o + r];
          }
        }
      }
    }
    return hostTensor(gGrid, gTheta, [n, 2, 3]);
  },
  gridSample(x, grid, alignCorners, sampler) {
    const [n, c, h, w] = x.shape, [, ho, wo] = grid.shape, points = ho * wo;
    const xs = x.cpuData(), gs = grid.cpuData(), out = newArray(x.dtype, n * c * points);
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < points; p++) {
        const q = (b * points + p) * 2;
        const tu = axisTaps(gs[q], w, alignCorners, sampler),
          tv = axisTaps(gs[q + 1], h, alignCorners, sampler);
        for (let ch = 0; ch < c; ch++) {
          const plane = (b * c + ch) * h * w;
          let sum = 0;
          for (let l = 0; l < 2; l++) {
            for (let k = 0; k < 2; k++) {
              const at = pixelIndex(tu.index[k], tv.index[l], w, h);
              if (at >= 0) sum += tu.weight[k] * tv.weight[l] * xs[plane + at];
            }
          }
          out[(b * c + ch) * points + p] = sum;
        }
      }
    }
    return hostTensor(x, out, [n, c, ho, wo]);
  },
  gridSampleGrad(gy, x, grid, alignCorners, sampler, wanted) {
    const [n, c, h, w] = x.shape, [, ho, wo] = grid.shape, points = ho * wo;
    const xs = x.cpuData(), gs = grid.cpuData(), g = gy.cpuData();
    const gx = newArray(x.dtype, x.size), gGrid = newArray(grid.dtype, grid.size);
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < points; p++) {
        const q = (b * points + p) * 2;
        const tu = axisTaps(gs[q], w, alignCorners, sampler),
          tv = axisTaps(gs[q + 1], h, alignCorners, sampler);
        let du = 0, dv = 0; // dL/du, dL/dv
        for (let ch = 0; ch < c; ch++) {
          const plane = (b * c + ch) * h * w, gOut = g[(b * c + ch) * points + p];
          for (let l = 0; l < 2; l++) {
            for (let k = 0; k < 2; k++) {
              const at = pixelIndex(tu.index[k], tv.index[l], w, h);
              if (at < 0) continue;
              gx[plane + at] += tu.weight[k] * tv.weight[l] * gOut;
              du += TAP_SLOPE[k] * tv.weight[l] * xs[plane + at] * gOut;
              dv += tu.weight[k] * TAP_SLOPE[l] * xs[plane + at] * gOut;
            }
          }
        }
        gGrid[q] = du * tu.scale;
        gGrid[q + 1] = dv * tv.scale;
      }
    }
    return {
      gx: wanted.x ? hostTensor(x, gx, x.shape) : null,
      gGrid: wanted.grid ? hostTensor(grid, gGrid, grid.shape) : null,
    };
  },
};

/** Offset of pixel (u, v) in its plane, or -1 outside the image (where zeros padding reads 0). */
function pixelIndex(u: number, v: number, w: number, h: number): number {
  return u >= 0 && u < w && v >= 0 && v < h ? v * w + u : -1;
}

/** Sampling grid [N, H, W, 2] of the affine maps theta [N, 2, 3] for an output of `size` [N, C, H, W]. */
export function affineGrid(theta: Tensor, size: Shape, { alignCorners = false } = {}): Tensor {
  if (theta.ndim !== 3 || theta.shape[1] !== 2 || theta.shape[2] !== 3) {
    throw new Error(`affineGrid: theta is ${shapeString(theta.shape)}, expected [N, 2, 3]`);
  }
  if (size.length !== 4 || size[0] !== theta.shape[0] || size.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(
      `affineGrid: size ${shapeString(size)} must be [N, C, H, W] with N = ${theta.shape[0]} (theta's batch)`,
    );
  }
  const grid = theta.device.affineGrid(theta, size, alignCorners);
  return record(grid, [theta], (gGrid) => [theta.device.affineGridGrad(gGrid, alignCorners)]);
}

/**
 * Bilinear sampling of x [N, C, H, W] at grid [N, Ho, Wo, 2] ((x, y) in [-1, 1]), zeros outside, with
 * gradients to x and to the grid. sampler "naive" is the TensorFlow STN sampler (see the header); it
 * ignores alignCorners and expects a grid made with alignCorners true.
 */
export function gridSample(
  x: Tensor,
  grid: Tensor,
  { alignCorners = false, sampler = "exact" as Sampler } = {},
): Tensor {
  if (
    x.ndim !== 4 || grid.ndim !== 4 || grid.shape[3] !== 2 || grid.shape[0] !== x.shape[0]
  ) {
    throw new Error(
      `gridSample: x ${shapeString(x.shape)} and grid ${
        shapeString(grid.shape)
      }, expected [N, C, H, W] and [N, Ho, Wo, 2]`,
    );
  }
  if (x.device !== grid.device || x.dtype !== grid.dtype) {
    throw new Error(
      `gridSample: x is ${x.dtype} on ${x.device.name}, grid is ${grid.dtype} on ${grid.device.name}`,
    );
  }
  const k = x.device;
  const y = k.gridSample(x, grid, alignCorners, sampler);
  return record(y, [x, grid], (gy) => {
    const { gx, gGrid } = k.gridSampleGrad(gy, x, grid, alignCorners, sampler, {
      x: x.requiresGrad,
      grid: grid.requiresGrad,
    });
    return [gx, gGrid];
  });
}

/** theta [N, 2, 3] of the rotations by `alphas` [N] radians (Eq. 8), differentiable in alpha. */
export function rotationTheta(alphas: Tensor): Tensor {
  if (alphas.ndim !== 1) {
    throw new Error(`rotationTheta: alphas is ${shapeString(alphas.shape)}, expected [N]`);
  }
  const n = alphas.shape[0];
  const c = reshape(cos(alphas), [n, 1]), s = reshape(sin(alphas), [n, 1]);
  const zero = alphas.device.full([n, 1], 0, alphas.dtype);
  return reshape(concat([c, neg(s), zero, s, c, zero], 1), [n, 2, 3]);
}
