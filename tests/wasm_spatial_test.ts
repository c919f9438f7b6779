/**
 * The WebAssembly backend's spatial kernels (maxPool2d, filter2d, interpolate, affineGrid, gridSample and
 * their gradients) give the same bits on 1, 2 and 3 threads. Chunk boundaries do not depend on the thread
 * count (wasm/runtime.ts), so a difference can only come from threads sharing an output or scratch memory:
 * a race. Each shape below is cut into several chunks (counts in the comments, from the grains of
 * wasm/<op>.ts), and the threaded runs are repeated, since a race need not show every time. Agreement
 * with the CPU reference is the op tests' job (tests/ops_test.ts).
 */
import assert from "node:assert/strict";
import type { Sampler, Shape } from "../engine/backend.ts";
import { gaussianKernel, SOBEL_X } from "../engine/ops/index.ts";
import { Random } from "../engine/random.ts";
import type { Tensor } from "../engine/tensor.ts";
import { createWasmBackend, type WasmBackend } from "../wasm/backend.ts";

const THREADS = [1, 2, 3];
const REPEATS = 3;

let backends: Promise<WasmBackend[]> | null = null;
const devices = () => backends ??= Promise.all(THREADS.map((threads) => createWasmBackend({ threads })));

function random(be: WasmBackend, shape: Shape, seed: number, lo = -1, hi = 1): Tensor {
  const rng = new Random(seed), n = shape.reduce((a, b) => a * b, 1);
  return be.fromData(Float32Array.from({ length: n }, () => rng.uniform(lo, hi)), shape);
}

/** The bits of every output, in order; null (a gradient not asked for) stays null. */
async function bits(outputs: (Tensor | null)[]): Promise<(Uint32Array | null)[]> {
  return await Promise.all(outputs.map(async (t) => {
    if (!t) return null;
    const data = new Uint32Array((await t.data()).buffer);
    t.dispose();
    return data;
  }));
}

/** Each case runs its kernels on a backend and returns their outputs. */
const CASES: { name: string; run: (be: WasmBackend) => (Tensor | null)[] }[] = [
  ...[[2, 2], [3, 2]].map(([kernel, stride]) => ({
    // forward: 4·3·31 = 372 rows (k 3, grain 58) or 384 (k 2, grain 128); gradient: 768 rows, grain 256
    name: `maxPool2d ${kernel}x${kernel} stride ${stride} and its gradient`,
    run: (be: WasmBackend) => {
      const x = random(be, [4, 3, 64, 64], 1);
      const { y, argmax } = be.maxPool2d(x, kernel, stride);
      const gx = be.maxPool2dGrad(random(be, y.shape, 2), argmax, x.shape, kernel, stride);
      return [y, argmax, gx];
    },
  })),
  ...([["Gaussian 11x11 valid", gaussianKernel(11, 1.5), 0], ["Sobel padding 1", SOBEL_X, 1], [
    "non-separable 3x4 padding 2",
    [[1, -2, 0.5, 3], [0.25, 4, -1, 2], [2, 1, 1, -3]],
    2,
  ]] as [string, readonly (readonly number[])[], number][]).map(([name, k, padding]) => ({
    // 4·3·Ho rows (648 to 792), grains 16384/Wo (240 to 287): 3 or 4 chunks per pass
    name: `filter2d ${name}`,
    run: (be: WasmBackend) => [
      be.filter2d(random(be, [4, 3, 64, 67], 3), Float64Array.from(k.flat()), k.length, k[0].length, padding),
    ],
  })),
  ...[false, true].map((alignCorners) => ({
    // forward: 1152 rows, grain 163 (8 chunks); gradient: 12 planes, grain 1
    name: `interpolate 64x64 -> 96x100 and its gradient, alignCorners ${alignCorners}`,
    run: (be: WasmBackend) => [
      be.interpolate(random(be, [4, 3, 64, 64], 4), 96, 100, alignCorners),
      be.interpolateGrad(random(be, [4, 3, 96, 100], 5), [4, 3, 64, 64], alignCorners),
    ],
  })),
  ...[false, true].map((alignCorners) => ({
    // forward: 768 rows, grain 170 (5 chunks); gradient: 16 rows of θ, grain 1
    name: `affineGrid and its gradient, alignCorners ${alignCorners}`,
    run: (be: WasmBackend) => [
      be.affineGrid(random(be, [8, 2, 3], 6), [8, 3, 96, 96], alignCorners),
      be.affineGridGrad(random(be, [8, 96, 96, 2], 7), alignCorners),
    ],
  })),
  ...(["exact", "naive"] as Sampler[]).flatMap((sampler) =>
    [false, true].map((alignCorners) => ({
      // forward: 384 rows of points, grain 56 (7 chunks); gradients: 4 images, grain 1 (4 chunks).
      // A zoom-in rotation with points outside the image: several points per input cell, some taps clamped.
      name: `gridSample ${sampler} and its gradients, alignCorners ${alignCorners}`,
      run: (be: WasmBackend) => {
        const [c, s] = [Math.cos(0.3) / 1.7, Math.sin(0.3) / 1.7];
        const theta = be.fromData(
          Float32Array.from([1, 2, 3, 4].flatMap((k) => [c * k / 2, -s, 0.1, s, c, -0.05 * k])),
          [4, 2, 3],
        );
        const grid = be.affineGrid(theta, [4, 3, 96, 96], alignCorners);
        const x = random(be, [4, 3, 64, 64], 8), gy = random(be, [4, 3, 96, 96], 9);
        const both = be.gridSampleGrad(gy, x, grid, alignCorners, sampler, { x: true, grid: true });
        const onlyX = be.gridSampleGrad(gy, x, grid, alignCorners, sampler, { x: true, grid: false });
        const onlyGrid = be.gridSampleGrad(gy, x, grid, alignCorners, sampler, { x: false, grid: true });
        assert.equal(onlyX.gGrid, null, "gGrid not asked for");
        assert.equal(onlyGrid.gx, null, "gx not asked for");
        return [be.gridSample(x, grid, alignCorners, sampler), both.gx, both.gGrid, onlyX.gx, onlyGrid.gGrid];
      },
    }))
  ),
];

for (const c of CASES) {
  Deno.test(`wasm threads 1, 2, 3 give the same bits: ${c.name}`, async () => {
    const [single, ...threaded] = await devices();
    const want = await bits(c.run(single));
    for (const be of threaded) {
      for (let repeat = 0; repeat < REPEATS; repeat++) {
        const got = await bits(c.run(be));
        got.forEach((g, k) => {
          const w = want[k];
          if (!g || !w) return assert.equal(g, w, `output ${k}: null on one side`);
          const differ = g.findIndex((v, i) => v !== w[i]);
          assert.equal(
            differ,
            -1,
            `output ${k} on ${be.runtime.threads} threads (run ${repeat + 1}) differs at element ${differ}`,
          );
        });
      }
    }
  });
}

Deno.test("wasm: gridSampleGrad computes only the gradients asked for, each with the same bits", async () => {
  const [single] = await devices();
  for (const c of CASES.filter((c) => c.name.startsWith("gridSample"))) {
    // [y, gx, gGrid, gx alone, gGrid alone]
    const [, gx, gGrid, gxAlone, gGridAlone] = await bits(c.run(single));
    assert.deepEqual(gxAlone, gx, `${c.name}: gx`);
    assert.deepEqual(gGridAlone, gGrid, `${c.name}: gGrid`);
  }
});

Deno.test("wasm threads: close the backends", async () => {
  for (const be of await devices()) be.runtime.close();
});
