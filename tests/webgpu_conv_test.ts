/**
 * The WebGPU conv and matmul kernels against the CPU reference (float64, rounded once), kernel by
 * kernel: conv2d (with bias), conv2dGradInput (also convTranspose2d's forward, outputPadding
 * included) and conv2dGradWeight, on random shapes, sizes that do not divide the tiles (up to
 * 64 x 256 x 16), sizes that do (the variant without bounds checks), stride 2 and 3, padding, and
 * every Table-1 layer geometry with channels and sides scaled down. Inputs of 1 to 4 channels take
 * the direct input-gradient and weight-gradient kernels, with sides and channel counts that do not
 * divide their blocks of pixels and channels. The naive kernels (one thread per output) run the same
 * cases.
 *
 * Tolerance: (K + 2)·2^-24 of the peak, K being the case's longest sum (tests/conv_cases.ts).
 */
import assert from "node:assert/strict";
import type { Backend } from "../engine/backend.ts";
import { uniform } from "../engine/create.ts";
import { cpu } from "../engine/cpu.ts";
import { Random } from "../engine/random.ts";
import type { WebGPUBackend } from "../webgpu/runtime.ts";
import { conv2dNaiveGpu } from "../webgpu/conv2d_naive.ts";
import { maxRelativeToPeak } from "./harness.ts";
import { TEST_DEVICES } from "./devices.ts";
import { conv, type ConvCase, convTolerance, randomCase, runConvKernels } from "./conv_cases.ts";

const webgpu = TEST_DEVICES.find((d) => d.name === "webgpu");

/** Table 1's layers (models/autoencoder.ts) with channels / 8 (at least 3), sides / 8 and batch 2. */
const TABLE_1_SCALED: ConvCase[] = [
  conv("Table 1 layer 1 (4x4 s2 p1, 3 channels in)", [2, 3, 16, 16], 4, 4, 2, 1),
  conv("Table 1 layer 2 (4x4 s2 p1)", [2, 4, 8, 8], 4, 4, 2, 1),
  conv("Table 1 layer 3 (3x3 s1 p1)", [2, 4, 4, 4], 4, 3, 1, 1),
  conv("Table 1 layer 4 (4x4 s2 p1)", [2, 4, 4, 4], 8, 4, 2, 1),
  conv("Table 1 layer 5 (3x3 s1 p1)", [2, 8, 2, 2], 8, 3, 1, 1),
  conv("Table 1 layer 6 (4x4 s2 p1)", [2, 8, 2, 2], 16, 4, 2, 1),
  conv("Table 1 layer 7 (3x3 s1 p1, 1x1 sides)", [2, 16, 1, 1], 8, 3, 1, 1),
  conv("Table 1 layer 8 (3x3 s1 p1)", [2, 8, 8, 8], 4, 3, 1, 1),
  conv("Table 1 latent (8x8 valid, window covers the input)", [2, 4, 8, 8], 13, 8),
];

const CASES: ConvCase[] = [
  ...TABLE_1_SCALED,
  conv("odd sizes 3x3 padding 1", [2, 3, 9, 7], 5, 3, 1, 1),
  conv("stride 2 no padding, odd sides", [1, 3, 11, 13], 6, 3, 2, 0),
  conv("stride 3 padding 2 (phases of unequal size)", [1, 2, 7, 9], 3, 3, 3, 2),
  conv("1x1 kernel stride 2 (phases no tap reaches)", [3, 4, 6, 6], 5, 1, 2, 0),
  conv("tiles divide: 64 channels, 16x16, 4x4 s2 p1", [2, 64, 16, 16], 64, 4, 2, 1),
  conv("tiles divide: 3x3 s1 p1, 8x8 sides", [2, 32, 8, 8], 64, 3, 1, 1),
  conv("tiles divide, 64 columns: 3x3 s1 p1, one 8x8 image", [1, 32, 8, 8], 64, 3, 1, 1),
  conv("more than one row tile: 80 channels out", [2, 6, 10, 10], 80, 3, 1, 1),
  conv("256-column tiles, not dividing: 33x33 sides", [1, 5, 33, 33], 6, 3, 1, 1),
  conv(
    "1 channel in, 4x4 s2 p1, sides not multiples of the 32-column run: 19x37",
    [3, 1, 19, 37],
    5,
    4,
    2,
    1,
  ),
  conv("3 channels in, 4x4 s2 p1, 35 phase columns (Table 1 layer 1 shape)", [2, 3, 22, 70], 7, 4, 2, 1),
  conv("2 channels in, 3x3 s1 p1 (one phase, taps above and below)", [2, 2, 9, 33], 3, 3, 1, 1),
  conv("1 channel in, 3x3 s1 p1 (12 rows per thread, 29 rows)", [2, 1, 29, 40], 4, 3, 1, 1),
  conv("1 channel in, two 32-row bands, 12 channels out (a partial block of 8)", [1, 1, 70, 20], 12, 4, 2, 1),
  conv("5 channels in (GEMM input gradient), stride 3 padding 2", [1, 5, 7, 9], 3, 3, 3, 2),
  { ...conv("non-square kernel 3x2", [2, 2, 7, 9], 3, 1, 2, 1), kernel: [3, 2] },
  { ...conv("outputPadding 1 (transposed 4x4 s2 p1)", [2, 3, 9, 9], 4, 4, 2, 1), outputPadding: 1 },
  { ...conv("outputPadding 2 (transposed 3x3 s3)", [1, 2, 8, 8], 3, 3, 3, 0), outputPadding: 2 },
];

const rng = new Random(20221);
for (let i = 0; i < 6; i++) CASES.push(randomCase(rng, i, 13));

if (webgpu) {
  for (const c of CASES) {
    const label = `${c.name}: x [${c.x}], ${c.cout} out, ${
      c.kernel.join("x")
    } s${c.geo.stride} p${c.geo.padding}`;
    for (const naive of [false, true]) {
      Deno.test(`webgpu ${naive ? "naive " : ""}conv kernels vs CPU reference: ${label}`, {
        ignore: webgpu.ignore,
      }, async () => {
        const gpu = await webgpu.get();
        // The naive kernels (webgpu/conv2d_naive.ts) in place of the ones conv2d.ts selects.
        const device: Backend = naive ? { ...(gpu as WebGPUBackend), ...conv2dNaiveGpu } : gpu;
        const want = runConvKernels(cpu, c), got = runConvKernels(device, c), tol = convTolerance(c);
        for (const [i, kernel] of ["conv2d", "conv2dGradInput", "conv2dGradWeight"].entries()) {
          assert.deepEqual(got[i].shape, want[i].shape, `${kernel} shape`);
          const err = maxRelativeToPeak(await got[i].data(), want[i].cpuData());
          assert.ok(err <= tol, `${kernel}: error ${err.toExponential(2)} > ${tol.toExponential(2)}`);
        }
      });
    }
  }

  Deno.test("webgpu conv kernels are deterministic: split-K weight gradient, two runs, same bits", {
    ignore: webgpu.ignore,
  }, async () => {
    const gpu = await webgpu.get();
    const c = conv("split-K", [16, 8, 16, 16], 8, 3, 1, 1);
    const [first, second] = [runConvKernels(gpu, c), runConvKernels(gpu, c)];
    for (let i = 0; i < 3; i++) assert.deepEqual(await first[i].data(), await second[i].data());
  });

  /** [Z, M, K] x [Z, K, N] shapes: odd, dividing the tiles, thin, and K not a multiple of 4. */
  const MATMULS: [number, number, number, number][] = [
    [1, 7, 5, 3],
    [2, 64, 64, 32],
    [3, 33, 70, 19],
    [1, 128, 128, 64],
    [1, 64, 256, 32],
    [2, 5, 12, 8],
  ];
  for (const [Z, M, N, K] of MATMULS) {
    Deno.test(`webgpu matmul vs CPU reference: [${Z}, ${M}, ${K}] x [${Z}, ${K}, ${N}], all transposes`, {
      ignore: webgpu.ignore,
    }, async () => {
      const gpu = await webgpu.get();
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const aShape = transA ? [Z, K, M] : [Z, M, K], bShape = transB ? [Z, N, K] : [Z, K, N];
          const run = (device: Backend, dtype: "float32" | "float64") =>
            device.matmul(
              uniform(aShape, -1, 1, new Random(5), { device, dtype }),
              uniform(bShape, -1, 1, new Random(6), { device, dtype }),
              transA,
              transB,
            );
          const err = maxRelativeToPeak(await run(gpu, "float32").data(), run(cpu, "float64").cpuData());
          const tol = K * 2 ** -24;
          assert.ok(
            err <= tol,
            `transA ${transA}, transB ${transB}: ${err.toExponential(2)} > ${tol.toExponential(2)}`,
          );
        }
      }
    });
  }
}
