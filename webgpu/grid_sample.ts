/**
 * affineGrid, gridSample and their gradients (the maths is in engine/ops/grid_sample.ts).
 *
 * affineGridGrad: one workgroup per θ entry (n, r, k) reduces Σ_{i,j} dL/dgrid[n,i,j,r] · b_k over
 * the H·W pixels as a tree in workgroup memory.
 *
 * gridSampleGrad to the grid: one thread per grid point, summing over channels.
 *
 * gridSampleGrad to the input, a scatter in the maths, is computed as a deterministic gather:
 * 1. Bin: every grid point p has a cell, its lower taps (v0, u0) ∈ [-1, H-1] x [-1, W-1] (points
 *    whose taps all fall outside the image have none). Integer atomics count the points per cell.
 * 2. An exclusive prefix sum of the counts gives each cell's slice of an entries array; integer
 *    atomics on a copy of the starts place each point's index in its cell's slice.
 * 3. One thread per cell sorts its slice by point index (insertion sort), which removes the only
 *    nondeterminism (the order of the atomic placement).
 * 4. One thread per input pixel (n, h, w) reads the four cells whose taps can reach it,
 *    (h-1..h) x (w-1..w), and adds weight · dL/dy[n, c] over their points, in that fixed order, to
 *    each channel c.
 * Integer atomics give the same counts and slices on every run, so two runs give the same bits.
 * A cell holds about one point for rotations and mild zooms; a grid that sends k points to one cell
 * costs O(k²) in step 3 for that cell's thread.
 */
import type { Kernels, Sampler } from "../engine/backend.ts";
import { bufferOf, type GpuRuntime, gpuTensor, runtimeOf } from "./runtime.ts";
import { exclusiveScan } from "./scan.ts";
import { kernel, read, readWrite, WG } from "./wgsl.ts";

/** Normalised coordinate of pixel j of `size` in the affine grid. */
const BASE_COORDINATE = /* wgsl */ `
fn baseCoordinate(j: u32, size: u32, align: u32) -> f32 {
  if (align == 0u) { return f32(2u * j + 1u) / f32(size) - 1.0; }
  return select(0.0, f32(2u * j) / f32(size - 1u) - 1.0, size > 1u);
}`;

const AFFINE_GRID = kernel("affineGrid", () => ({
  params: { n: "u32", H: "u32", W: "u32", align: "u32" },
  buffers: { theta: read(), grid: readWrite() },
  declarations: BASE_COORDINATE,
  flat: { index: "q", count: "p.n" },
  body: /* wgsl */ `
  let x = baseCoordinate(q % p.W, p.W, p.align); let y = baseCoordinate((q / p.W) % p.H, p.H, p.align);
  let t = (q / (p.W * p.H)) * 6u;
  grid[2u * q] = theta[t] * x + theta[t + 1u] * y + theta[t + 2u];
  grid[2u * q + 1u] = theta[t + 3u] * x + theta[t + 4u] * y + theta[t + 5u];`,
}));

const AFFINE_GRID_GRAD = kernel("affineGridGrad", () => ({
  params: { H: "u32", W: "u32", align: "u32" },
  buffers: { gGrid: read(), gTheta: readWrite() },
  declarations: `${BASE_COORDINATE}
var<workgroup> partial: array<f32, ${WG}>;`,
  body: /* wgsl */ `
  let o = wid.x; let n = o / 6u; let r = (o % 6u) / 3u; let k = o % 3u;
  let pixels = p.H * p.W;
  var s = 0.0;
  for (var q = lid.x; q < pixels; q += ${WG}u) {
    var b = 1.0;
    if (k == 0u) { b = baseCoordinate(q % p.W, p.W, p.align); }
    if (k == 1u) { b = baseCoordinate(q / p.W, p.H, p.align); }
    s += gGrid[(n * pixels + q) * 2u + r] * b;
  }
  partial[lid.x] = s;
  for (var half = ${WG / 2}u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (lid.x < half) { partial[lid.x] += partial[lid.x + half]; }
  }
  if (lid.x == 0u) { gTheta[o] = partial[0]; }`,
}));

/** The two taps along one axis of `size` pixels, as in axisTaps of engine/ops/grid_sample.ts. */
const taps = (sampler: Sampler) => /* wgsl */ `
struct Taps { lo: i32, hi: i32, w0: f32, w1: f32, scale: f32 }
fn taps(g: f32, size: u32) -> Taps {
  let n = f32(size);
  ${
  sampler === "naive"
    ? `let u = (g + 1.0) * n / 2.0;
  let a0 = i32(clamp(floor(u), -2.0, n + 1.0));
  let lo = clamp(a0, 0, i32(size) - 1); let hi = clamp(a0 + 1, 0, i32(size) - 1);
  return Taps(lo, hi, f32(hi) - u, u - f32(lo), n / 2.0);`
    : `let scale = select(n / 2.0, (n - 1.0) / 2.0, p.align == 1u);
  let u = select(((g + 1.0) * n - 1.0) / 2.0, (g + 1.0) * scale, p.align == 1u);
  let a0 = floor(u);
  let lo = i32(clamp(a0, -2.0, n + 1.0)); // taps beyond the border read 0 whatever their index
  return Taps(lo, lo + 1, a0 + 1.0 - u, u - a0, scale);`
}
}
fn inside(t: i32, size: u32) -> bool { return t >= 0 && t < i32(size); }
/** The weight of pixel i among an axis's two taps (both, when the naive sampler clamps them together). */
fn weightAt(t: Taps, i: i32) -> f32 { return select(0.0, t.w0, t.lo == i) + select(0.0, t.w1, t.hi == i); }`;

/** Params of every sampler kernel: x is [N, C, H, W], the grid has `points` points per image. */
const SAMPLER_PARAMS = { N: "u32", C: "u32", H: "u32", W: "u32", points: "u32", align: "u32" } as const;

const FORWARD = kernel("gridSample", (sampler: Sampler) => ({
  params: SAMPLER_PARAMS,
  buffers: { xs: read(), grid: read(), ys: readWrite() },
  declarations: taps(sampler),
  flat: { index: "o", count: "p.N * p.C * p.points" },
  body: /* wgsl */ `
  let pt = o % p.points; let plane = o / p.points; let n = plane / p.C;
  let q = (n * p.points + pt) * 2u;
  let tu = taps(grid[q], p.W); let tv = taps(grid[q + 1u], p.H);
  let us = array<i32, 2>(tu.lo, tu.hi); let wus = array<f32, 2>(tu.w0, tu.w1);
  let vs = array<i32, 2>(tv.lo, tv.hi); let wvs = array<f32, 2>(tv.w0, tv.w1);
  var s = 0.0;
  for (var l = 0; l < 2; l++) {
    for (var k = 0; k < 2; k++) {
      if (inside(us[k], p.W) && inside(vs[l], p.H)) {
        s += wus[k] * wvs[l] * xs[(plane * p.H + u32(vs[l])) * p.W + u32(us[k])];
      }
    }
  }
  ys[o] = s;`,
}));

const GRID_GRAD = kernel("gridSample/gradGrid", (sampler: Sampler) => ({
  params: SAMPLER_PARAMS,
  buffers: { gy: read(), xs: read(), grid: read(), gGrid: readWrite() },
  declarations: taps(sampler),
  flat: { index: "o", count: "p.N * p.points" },
  body: /* wgsl */ `
  let n = o / p.points; let pt = o % p.points;
  let tu = taps(grid[2u * o], p.W); let tv = taps(grid[2u * o + 1u], p.H);
  let us = array<i32, 2>(tu.lo, tu.hi); let wus = array<f32, 2>(tu.w0, tu.w1);
  let vs = array<i32, 2>(tv.lo, tv.hi); let wvs = array<f32, 2>(tv.w0, tv.w1);
  let slope = array<f32, 2>(-1.0, 1.0);
  var du = 0.0; var dv = 0.0;
  for (var c = 0u; c < p.C; c++) {
    let plane = n * p.C + c;
    let g = gy[plane * p.points + pt];
    for (var l = 0; l < 2; l++) {
      for (var k = 0; k < 2; k++) {
        if (inside(us[k], p.W) && inside(vs[l], p.H)) {
          let x = xs[(plane * p.H + u32(vs[l])) * p.W + u32(us[k])] * g;
          du += slope[k] * wvs[l] * x;
          dv += wus[k] * slope[l] * x;
        }
      }
    }
  }
  gGrid[2u * o] = du * tu.scale;
  gGrid[2u * o + 1u] = dv * tv.scale;`,
}));

/** Cell of grid point o (n·points + pt) in its image's (H+1) x (W+1) cells, or -1 when it taps nothing. */
const CELL = /* wgsl */ `
fn cellOf(o: u32) -> i32 {
  let tu = taps(grid[2u * o], p.W); let tv = taps(grid[2u * o + 1u], p.H);
  if (tu.lo < -1 || tu.lo >= i32(p.W) || tv.lo < -1 || tv.lo >= i32(p.H)) { return -1; }
  let cells = (p.H + 1u) * (p.W + 1u);
  return i32((o / p.points) * cells + u32(tv.lo + 1) * (p.W + 1u) + u32(tu.lo + 1));
}`;

const COUNT = kernel("gridSample/count", (sampler: Sampler) => ({
  params: SAMPLER_PARAMS,
  buffers: { grid: read(), counts: readWrite("atomic<u32>") },
  declarations: taps(sampler) + CELL,
  flat: { index: "o", count: "p.N * p.points" },
  body: /* wgsl */ `
  let cell = cellOf(o);
  if (cell >= 0) { atomicAdd(&counts[cell], 1u); }`,
}));

const PLACE = kernel("gridSample/place", (sampler: Sampler) => ({
  params: SAMPLER_PARAMS,
  buffers: { grid: read(), cursor: readWrite("atomic<u32>"), entries: readWrite("u32") },
  declarations: taps(sampler) + CELL,
  flat: { index: "o", count: "p.N * p.points" },
  body: /* wgsl */ `
  let cell = cellOf(o);
  if (cell >= 0) { entries[atomicAdd(&cursor[cell], 1u)] = o % p.points; }`,
}));

const SORT = kernel("gridSample/sort", () => ({
  params: { cells: "u32" },
  buffers: { starts: read("u32"), counts: read("u32"), entries: readWrite("u32") },
  flat: { index: "cell", count: "p.cells" },
  body: /* wgsl */ `
  let start = starts[cell]; let end = start + counts[cell];
  for (var i = start + 1u; i < end; i++) {
    let e = entries[i];
    var j = i;
    while (j > start && entries[j - 1u] > e) {
      entries[j] = entries[j - 1u];
      j--;
    }
    entries[j] = e;
  }`,
}));

/** One thread per input pixel (n, h, w): each point's weight is computed once and applied to all C channels. */
const GATHER = kernel("gridSample/gather", (sampler: Sampler) => ({
  params: SAMPLER_PARAMS,
  buffers: {
    gy: read(),
    grid: read(),
    starts: read("u32"),
    counts: read("u32"),
    entries: read("u32"),
    gx: readWrite(),
  },
  declarations: taps(sampler),
  flat: { index: "i", count: "p.N * p.H * p.W" },
  body: /* wgsl */ `
  let w = i % p.W; let h = (i / p.W) % p.H; let n = i / (p.W * p.H);
  let pixels = p.H * p.W; let first = n * p.C * pixels + h * p.W + w;
  for (var c = 0u; c < p.C; c++) { gx[first + c * pixels] = 0.0; }
  let cellBase = n * (p.H + 1u) * (p.W + 1u);
  // Cells (v0 + 1, u0 + 1) with v0 ∈ {h - 1, h}, u0 ∈ {w - 1, w}.
  for (var cv = h; cv <= h + 1u; cv++) {
    for (var cu = w; cu <= w + 1u; cu++) {
      let cell = cellBase + cv * (p.W + 1u) + cu;
      let start = starts[cell];
      for (var e = start; e < start + counts[cell]; e++) {
        let pt = entries[e];
        let q = (n * p.points + pt) * 2u;
        let a = weightAt(taps(grid[q], p.W), i32(w)) * weightAt(taps(grid[q + 1u], p.H), i32(h));
        for (var c = 0u; c < p.C; c++) { gx[first + c * pixels] += a * gy[(n * p.C + c) * p.points + pt]; }
      }
    }
  }`,
}));

type SamplerParams = { N: number; C: number; H: number; W: number; points: number; align: number };

function samplerParams(
  x: { shape: readonly number[] },
  points: number,
  alignCorners: boolean,
): SamplerParams {
  const [N, C, H, W] = x.shape;
  return { N, C, H, W, points, align: alignCorners ? 1 : 0 };
}

/** dL/dx of gridSample by binning, sorting and gathering (see the header). */
function gridSampleInputGrad(
  rt: GpuRuntime,
  buffers: { gy: GPUBuffer; grid: GPUBuffer; gx: GPUBuffer },
  shape: readonly number[],
  points: number,
  params: SamplerParams,
  sampler: Sampler,
): void {
  const [N, , H, W] = shape;
  const cells = N * (H + 1) * (W + 1), cellBytes = cells * 4;
  const counts = rt.acquire(cellBytes), starts = rt.acquire(cellBytes), cursor = rt.acquire(cellBytes);
  const entries = rt.acquire(N * points * 4);
  rt.clear(counts, cellBytes);
  COUNT.record(rt, {
    variant: sampler,
    params,
    buffers: { grid: buffers.grid, counts },
    threads: N * points,
  });
  exclusiveScan(rt, counts, starts, cells);
  rt.copy(starts, cursor, cellBytes);
  PLACE.record(rt, {
    variant: sampler,
    params,
    buffers: { grid: buffers.grid, cursor, entries },
    threads: N * points,
  });
  SORT.record(rt, { params: { cells }, buffers: { starts, counts, entries }, threads: cells });
  GATHER.record(rt, {
    variant: sampler,
    params,
    buffers: { gy: buffers.gy, grid: buffers.grid, starts, counts, entries, gx: buffers.gx },
    threads: N * H * W,
  });
  for (const b of [counts, starts, cursor, entries]) rt.release(b);
}

export const gridSampleGpu: Pick<Kernels, "affineGrid" | "affineGridGrad" | "gridSample" | "gridSampleGrad"> =
  {
    affineGrid(theta, size, alignCorners) {
      const [N, , H, W] = size;
      const grid = gpuTensor(theta, [N, H, W, 2]);
      AFFINE_GRID.record(runtimeOf(theta), {
        params: { n: N * H * W, H, W, align: alignCorners ? 1 : 0 },
        buffers: { theta: bufferOf(theta), grid: bufferOf(grid) },
        threads: N * H * W,
      });
      return grid;
    },
    affineGridGrad(gGrid, alignCorners) {
      const [N, H, W] = gGrid.shape;
      const gTheta = gpuTensor(gGrid, [N, 2, 3]);
      AFFINE_GRID_GRAD.record(runtimeOf(gGrid), {
        params: { H, W, align: alignCorners ? 1 : 0 },
        buffers: { gGrid: bufferOf(gGrid), gTheta: bufferOf(gTheta) },
        workgroups: [6 * N],
      });
      return gTheta;
    },
    gridSample(x, grid, alignCorners, sampler) {
      const [N, C] = x.shape, [, Ho, Wo] = grid.shape;
      const y = gpuTensor(x, [N, C, Ho, Wo]);
      FORWARD.record(runtimeOf(x), {
        variant: sampler,
        params: samplerParams(x, Ho * Wo, alignCorners),
        buffers: { xs: bufferOf(x), grid: bufferOf(grid), ys: bufferOf(y) },
        threads: y.size,
      });
      return y;
    },
    gridSampleGrad(gy, x, grid, alignCorners, sampler, wanted) {
      const [N] = x.shape, [, Ho, Wo] = grid.shape, points = Ho * Wo;
      const rt = runtimeOf(x), params = samplerParams(x, points, alignCorners);
      let gx = null, gGrid = null;
      if (wanted.grid) {
        gGrid = gpuTensor(x, grid.shape);
        GRID_GRAD.record(rt, {
          variant: sampler,
          params,
          buffers: { gy: bufferOf(gy), xs: bufferOf(x), grid: bufferOf(grid), gGrid: bufferOf(gGrid) },
          threads: N * points,
        });
      }
      if (wanted.x) {
        gx = gpuTensor(x, x.shape);
        const buffers = { gy: bufferOf(gy), grid: bufferOf(grid), gx: bufferOf(gx) };
        gridSampleInputGrad(rt, buffers, x.shape, points, params, sampler);
      }
      return { gx, gGrid };
    },
  };
