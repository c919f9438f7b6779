/**
 * The WebAssembly GEMM kernels (wasm/matmul.ts, wasm/conv2d.ts) against the CPU reference (float64,
 * rounded once): matmul with every transpose, conv2d with bias, conv2dGradInput (also
 * convTranspose2d's forward, outputPadding included) and conv2dGradWeight, on shapes that do not divide
 * the MR x NR tiles or the NC blocks, 1 and 3 channels, stride 1, 2 and 3, padding, output rows that
 * break inside a panel, and every Table-1 layer geometry scaled down. Each runs twice: with
 * f32x4.relaxed_madd and with the mul + add kernels.
 *
 * Then determinism: the same operands on backends of 1, 2 and 3 threads give the same bits. Each
 * multi-thread backend is fresh, and the kernel is repeated until its scratch-slot counter shows a
 * second thread ran a chunk of it (so the comparison is not between two single-thread runs).
 *
 * Tolerance: (K + 2)·2^-24 of the peak, K being the longest sum (tests/conv_cases.ts says why; for a
 * matmul K is its inner size).
 */
import assert from "node:assert/strict";
import type { Backend, Shape } from "../engine/backend.ts";
import { uniform } from "../engine/create.ts";
import { slidingOutputSize } from "../engine/ops/conv2d.ts";
import { cpu } from "../engine/cpu.ts";
import { Random } from "../engine/random.ts";
import type { Tensor } from "../engine/tensor.ts";
import { createWasmBackend, type WasmBackend } from "../wasm/backend.ts";
import { slotCounter, tag, TILE } from "../wasm/matmul.ts";
import { maxRelativeToPeak } from "./harness.ts";
import { conv, type ConvCase, convTolerance, randomCase, runConvKernels } from "./conv_cases.ts";

const CONV_CASES: ConvCase[] = [
  conv("Table 1 layer 1 (4x4 s2 p1, 3 channels in)", [2, 3, 32, 32], 5, 4, 2, 1),
  conv("Table 1 layer 1 (4x4 s2 p1, 1 channel in)", [2, 1, 32, 32], 5, 4, 2, 1),
  conv("Table 1 layer 2 (4x4 s2 p1)", [2, 9, 16, 16], 7, 4, 2, 1),
  conv("Table 1 layer 3 (3x3 s1 p1)", [2, 9, 8, 8], 7, 3, 1, 1),
  conv("Table 1 layer 7 (3x3 s1 p1, 1x1 sides)", [2, 16, 1, 1], 8, 3, 1, 1),
  conv("Table 1 latent (8x8 valid, window covers the input)", [3, 4, 8, 8], 13, 8),
  conv("odd sizes 3x3 padding 1, 3 channels", [2, 3, 9, 7], 5, 3, 1, 1),
  conv("1 channel, stride 1, no padding, rows break inside panels", [3, 1, 13, 11], 6, 3, 1, 0),
  conv("stride 2 no padding, odd sides", [1, 3, 11, 13], 6, 3, 2, 0),
  conv("stride 3 padding 2, 17 output columns", [1, 2, 50, 51], 3, 3, 3, 2),
  conv("stride 3 padding 1, panels of 8 in one row", [2, 3, 30, 30], 5, 3, 3, 1),
  conv("1x1 kernel stride 2", [3, 4, 6, 6], 5, 1, 2, 0),
  conv("5x5 kernel padding 2", [2, 5, 12, 12], 4, 5, 1, 2),
  conv("more than one K-block: 40 channels x 3x3 = 360 taps", [2, 40, 9, 9], 6, 3, 1, 1),
  conv("more than one K-block in the input gradient: 300 channels out", [1, 4, 6, 6], 300, 3, 1, 1),
  conv("more than NC pixels per image and tap blocks: 33x33", [1, 5, 33, 33], 6, 3, 1, 1),
  conv("rows of M past a tile: 13 channels out, 4 in", [2, 4, 10, 10], 13, 3, 1, 1),
  conv("Cout 1", [2, 3, 10, 9], 1, 3, 1, 1),
  { ...conv("non-square kernel 3x2", [2, 2, 7, 9], 3, 1, 2, 1), kernel: [3, 2] },
  {
    ...conv("non-square kernel 2x3 stride 1 (input gradient by col2im)", [2, 3, 9, 11], 4, 1, 1, 1),
    kernel: [2, 3],
  },
  { ...conv("outputPadding 1 (transposed 4x4 s2 p1)", [2, 3, 9, 9], 4, 4, 2, 1), outputPadding: 1 },
  { ...conv("outputPadding 2 (transposed 3x3 s3)", [1, 2, 8, 8], 3, 3, 3, 0), outputPadding: 2 },
];

const rng = new Random(4242);
for (let i = 0; i < 6; i++) CONV_CASES.push(randomCase(rng, i, 19));

/** [Z, M, N, K]: odd, thin, K = 1, and sizes past KC (256) and NC (128). */
const MATMULS: [number, number, number, number][] = [
  [1, 7, 5, 3],
  [3, 33, 70, 19],
  [2, 5, 12, 8],
  [1, 1, 1, 1],
  [1, 9, 17, 1],
  [1, 130, 300, 520],
  [2, 6, 131, 261],
];

function runMatmul(device: Backend, [Z, M, N, K]: number[], transA: boolean, transB: boolean): Tensor {
  const dtype = device.name === "cpu" ? "float64" : "float32";
  const aShape = transA ? [Z, K, M] : [Z, M, K], bShape = transB ? [Z, N, K] : [Z, K, N];
  return device.matmul(
    uniform(aShape, -1, 1, new Random(5), { device, dtype }),
    uniform(bShape, -1, 1, new Random(6), { device, dtype }),
    transA,
    transB,
  );
}

const relaxed = await createWasmBackend({ threads: 2 });
const plain = await createWasmBackend({ threads: 2, relaxed: false });

Deno.test("wasm: this engine runs relaxed SIMD, so both kernel variants below are tested", () => {
  assert.equal(relaxed.relaxed, true, "relaxed SIMD unavailable: the relaxed_madd kernels go untested");
  assert.equal(plain.relaxed, false);
});

for (const be of [relaxed, plain]) {
  const variant = be.relaxed ? "relaxed_madd" : "mul + add";
  for (const c of CONV_CASES) {
    const label = `${c.name}: x [${c.x}], ${c.cout} out, ${
      c.kernel.join("x")
    } s${c.geo.stride} p${c.geo.padding}`;
    Deno.test(`wasm (${variant}) conv kernels vs CPU reference: ${label}`, async () => {
      const want = runConvKernels(cpu, c), got = runConvKernels(be, c), tol = convTolerance(c);
      for (const [i, kernel] of ["conv2d", "conv2dGradInput", "conv2dGradWeight"].entries()) {
        assert.deepEqual(got[i].shape, want[i].shape, `${kernel} shape`);
        const err = maxRelativeToPeak(await got[i].data(), want[i].cpuData());
        assert.ok(err <= tol, `${kernel}: error ${err.toExponential(2)} > ${tol.toExponential(2)}`);
      }
    });
  }
  for (const shape of MATMULS) {
    const [Z, M, N, K] = shape;
    Deno.test(`wasm (${variant}) matmul vs CPU reference: [${Z}, ${M}, ${K}] x [${Z}, ${K}, ${N}], all transposes`, async () => {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const got = runMatmul(be, shape, transA, transB), want = runMatmul(cpu, shape, transA, transB);
          const err = maxRelativeToPeak(await got.data(), want.cpuData()), tol = (K + 2) * 2 ** -24;
          assert.ok(
            err <= tol,
            `transA ${transA}, transB ${transB}: ${err.toExponential(2)} > ${tol.toExponential(2)}`,
          );
        }
      }
    });
  }
}

/** The kernels compared bit for bit: odd shapes, 1 and 3 channels, stride 1 and 2, each many chunks. */
const DETERMINISM: { name: string; run: (be: Backend) => Tensor }[] = (() => {
  const c3 = conv("3 channels, 4x4 s2 p1", [16, 3, 75, 59], 11, 4, 2, 1);
  const c1 = conv("1 channel, 3x3 s1 p1", [16, 1, 60, 57], 9, 3, 1, 1);
  const operands = (be: Backend, c: ConvCase) => {
    const [Nb, Cin, H, W] = c.x, [kh, kw] = c.kernel;
    const yShape = [Nb, c.cout, ...slidingOutputSize(H, W, kh, kw, c.geo)];
    const on = (shape: Shape, seed: number) => uniform(shape, -1, 1, new Random(seed), { device: be });
    return { x: on(c.x, 1), w: on([c.cout, Cin, kh, kw], 2), b: on([c.cout], 3), gy: on(yShape, 4) };
  };
  return [c3, c1].flatMap((c) => [
    {
      name: `conv2d, ${c.name}`,
      run: (be: Backend) => {
        const { x, w, b } = operands(be, c);
        return be.conv2d(x, w, b, c.geo);
      },
    },
    {
      name: `conv2dGradInput, ${c.name}`,
      run: (be: Backend) => {
        const { w, gy } = operands(be, c);
        return be.conv2dGradInput(gy, w, c.x, c.geo);
      },
    },
    {
      name: `conv2dGradWeight, ${c.name}`,
      run: (be: Backend) => {
        const { x, gy } = operands(be, c);
        return be.conv2dGradWeight(x, gy, c.kernel, c.geo);
      },
    },
  ]).concat({
    name: "matmul [3, 131, 77] x [3, 77, 1029], A transposed",
    run: (be: Backend) =>
      be.matmul(
        uniform([3, 77, 131], -1, 1, new Random(5), { device: be }),
        uniform([3, 77, 1029], -1, 1, new Random(6), { device: be }),
        true,
        false,
      ),
  });
})();

/** Threads that have taken a scratch slot, i.e. run a chunk of a GEMM kernel, on this backend. */
const threadsThatRan = (be: WasmBackend) => new Int32Array(be.runtime.memory.buffer, slotCounter(be), 1)[0];
const bits = async (t: Tensor) => new Uint32Array((await t.data()).buffer.slice(0));

const single = await createWasmBackend({ threads: 1 });
for (const k of DETERMINISM) {
  Deno.test(`wasm determinism: ${k.name}: 1, 2 and 3 threads give the same bits`, async () => {
    const want = await bits(k.run(single));
    for (const threads of [2, 3]) {
      const be = await createWasmBackend({ threads });
      try {
        for (let attempt = 0; attempt < 20 && threadsThatRan(be) < 2; attempt++) {
          assert.deepEqual(await bits(k.run(be)), want, `${threads} threads, attempt ${attempt}`);
        }
        assert.ok(threadsThatRan(be) >= 2, `${threads} threads: no worker ran a chunk in 20 attempts`);
      } finally {
        be.runtime.close();
      }
    }
  });
}

Deno.test("wasm: packing a partial row panel reads no row past M, even at the memory's last byte", () => {
  // A is one row of K values in the memory's last bytes, with a row stride of 1 MiB elements: rows 1-5 of
  // the 6-row panel would lie megabytes past the end. They must read as zeros without being loaded (a
  // WebAssembly select evaluates both operands, so a select here trapped when A ended the memory).
  const runtime = single.runtime, K = 5, MR = TILE.rows;
  const dst = runtime.alloc(4 * MR * K), src = runtime.memory.buffer.byteLength - 4 * K;
  const a = [1, 2, 3, 4, 5];
  new Float32Array(runtime.memory.buffer, src, K).set(a);
  runtime.run(`gemm_pack_a_${tag(TILE)}`, [src, 1 << 20, 1, 0, 1, K, K, dst], 1, 1);
  const want = a.flatMap((v) => [v, ...Array(MR - 1).fill(0)]);
  assert.deepEqual(Array.from(runtime.f32(dst, MR * K)), want);
  runtime.free(dst, 4 * MR * K);
});
