/**
 * The direct conv kernels for inputs of few channels (Cin ≤ FEW_CHANNELS in conv2d.ts), where the
 * GEMM's M = Cin (input gradient) or N = Cin·kh·kw (weight gradient) would fill few tile rows or
 * columns. Each thread computes a block of outputs with the layer's geometry unrolled at build time,
 * so every value it loads serves every output that needs it. They compute the sums of
 * conv2d_naive.ts, reordered.
 */
import type { Conv2dGeometry, Shape } from "../engine/backend.ts";
import type { Tensor } from "../engine/tensor.ts";
import { bufferOf, gpuTensor, runtimeOf } from "./runtime.ts";
import { convConstants } from "./conv2d_naive.ts";
import { sumSplits } from "./conv2d_gemm.ts";
import { constants, each, kernel, linearWorkgroups, range, read, readWrite } from "./wgsl.ts";

/** Threads per workgroup of the direct kernels. */
const WORKGROUP = 64;

/** Output channels, output rows and adjacent output columns of one thread of the direct weight gradient. */
const WEIGHT_CHANNELS = 8, WEIGHT_ROWS = 32, WEIGHT_RUN = 8;

/**
 * conv2dGradWeight for Cin ≤ FEW_CHANNELS, where N = Cin·kh·kw is too narrow for the GEMM tiles.
 * Thread `chunk` sums dw[co0..co0+WEIGHT_CHANNELS−1, ci, ·, ·] (co0 and ci from the workgroup)
 * over its own pixels: WEIGHT_ROWS output rows of one image, WEIGHT_RUN columns from ow. Per row it
 * reads WEIGHT_CHANNELS·WEIGHT_RUN dy values and, per ky, the (WEIGHT_RUN−1)·s + kw inputs its
 * taps span (column ow + q at tap kx reads entry q·s + kx), each once. It writes its partial sums to
 * parts[chunk]; SUM_SPLITS adds the chunks in order.
 */
const GRAD_WEIGHT = kernel("conv2dGradWeight/fewChannels", (consts: Record<string, number>) => {
  const { S, kh, kw } = consts, span = (WEIGHT_RUN - 1) * S + kw;
  const sums = (f: (c: number, ky: number, kx: number) => string) =>
    each(range(WEIGHT_CHANNELS), (c) => each(range(kh), (ky) => each(range(kw), (kx) => f(c, ky, kx))));
  return {
    buffers: { x: read(), dy: read(), parts: readWrite() },
    declarations: constants(consts),
    workgroupSize: WORKGROUP,
    flat: { index: "chunk" },
    body: /* wgsl */ `
  let bands = (OH + ${WEIGHT_ROWS - 1}u) / ${WEIGHT_ROWS}u; let runs = (OW + ${
      WEIGHT_RUN - 1
    }u) / ${WEIGHT_RUN}u;
  if (chunk >= Nb * bands * runs) { return; }
  let img = chunk / (bands * runs); let band = chunk % (bands * runs) / runs; let ow = chunk % runs * ${WEIGHT_RUN}u;
  let ci = wid.z % Cin; let co0 = wid.z / Cin * ${WEIGHT_CHANNELS}u;
  let iw0 = ow * S - PAD; // column of entry 0 (wraps below 0 and reads as padding)
${sums((c, ky, kx) => `  var s${c}_${ky}_${kx} = 0.0;`)}
  for (var oh = band * ${WEIGHT_ROWS}u; oh < min(OH, (band + 1u) * ${WEIGHT_ROWS}u); oh++) {
${
      each(range(WEIGHT_CHANNELS), (c) =>
        each(range(WEIGHT_RUN), (q) => {
          const co = `co0 + ${c}u`;
          return `    let d${c}_${q} = select(0.0, dy[((img * Cout + ${co}) * OH + oh) * OW + ow + ${q}u], ${co} < Cout && ow + ${q}u < OW);`;
        }))
    }
${
      each(range(kh), (ky) =>
        `    let ih${ky} = oh * S + ${ky}u - PAD; let row${ky} = ((img * Cin + ci) * H + ih${ky}) * W + iw0;\n` +
        each(range(span), (v) =>
          `    let x${ky}_${v} = select(0.0, x[row${ky} + ${v}u], ih${ky} < H && iw0 + ${v}u < W);`))
    }
${
      sums((c, ky, kx) =>
        each(range(WEIGHT_RUN), (q) =>
          `    s${c}_${ky}_${kx} = fma(d${c}_${q}, x${ky}_${q * S + kx}, s${c}_${ky}_${kx});`)
      )
    }
  }
${
      sums((c, ky, kx) => {
        const co = `co0 + ${c}u`;
        return `  if (${co} < Cout) { parts[((chunk * Cout + ${co}) * Cin + ci) * kh * kw + ${
          ky * kw + kx
        }u] = s${c}_${ky}_${kx}; }`;
      })
    }
`,
  };
});

/** conv2dGradWeight by the direct kernel: partial sums per chunk of pixels, added in order. */
export function conv2dGradWeightFewChannels(
  x: Tensor,
  gy: Tensor,
  kh: number,
  kw: number,
  geo: Conv2dGeometry,
): Tensor {
  const [Nb, Cin] = x.shape, [, Cout, OH, OW] = gy.shape, rt = runtimeOf(x);
  const dw = gpuTensor(x, [Cout, Cin, kh, kw]);
  const chunks = Nb * Math.ceil(OH / WEIGHT_ROWS) * Math.ceil(OW / WEIGHT_RUN);
  const parts = gpuTensor(x, [chunks, Cout, Cin, kh, kw]);
  GRAD_WEIGHT.record(rt, {
    variant: convConstants(x.shape, gy.shape, kh, kw, geo),
    buffers: { x: bufferOf(x), dy: bufferOf(gy), parts: bufferOf(parts) },
    workgroups: [...linearWorkgroups(rt, chunks, WORKGROUP), Cin * Math.ceil(Cout / WEIGHT_CHANNELS)],
  });
  return sumSplits(parts, dw, chunks);
}

/**
 * Adjacent phase columns j..j+RUN−1 each thread of the direct input gradient computes. On lavapipe,
 * with one phase row per thread, Table 1's last layer ran at 2.7 (1 channel) and 3.9 (3 channels)
 * GFLOP per CPU-second with 4, about 4 and 7 with 32; 64 was no faster and compiled 4x slower.
 */
const RUN = 32;

/** `i + 2u` or `i - 1u` (u32 wraps below 0, and the bounds checks then fail). */
const offset = (base: string, d: number) => (d >= 0 ? `${base} + ${d}u` : `${base} - ${-d}u`);

/**
 * Phase rows per thread: as many as keep its accumulators (rows·s²·Cin·RUN) within 384, that is 3
 * rows for Table 1's 1-channel layer (about 35% more GFLOP per CPU-second than 1 row) and 1 for 3
 * channels.
 */
function phaseRows(Cin: number, s: number): number {
  return Math.max(1, Math.floor(384 / (s * s * Cin * RUN)));
}

/**
 * The input gradient for Cin ≤ FEW_CHANNELS, where a GEMM with M = Cin would leave most tile rows
 * empty and gather every dy element once per tap. A thread computes every channel and every phase
 * of the dx block of phase rows i..i+R−1 and phase columns j..j+RUN−1 (R = phaseRows). Phase
 * (ry, rx), tap (t, u), phase pixel (i + r, j + q) reads dy[i + r + offH − t, j + q + offW − u]; the
 * geometry is known when the shader is built, so the taps, offsets and the dy window they span are
 * unrolled here: per output channel co the thread reads that window once and each dy value serves
 * every row, phase and input channel that reaches it (R·s²·Cin·RUN·⌈kh/s⌉·⌈kw/s⌉ multiply-adds per
 * window). The weight indices do not depend on the thread, so all threads read the same weights.
 */
const GRAD_INPUT = kernel("conv2dGradInput/fewChannels", (consts: Record<string, number>) => {
  const { Cin, S, PAD, kh, kw } = consts;
  const phases = range(S * S).map((z) => {
    const ry = Math.floor(z / S), rx = z % S, ky0 = (ry + PAD) % S, kx0 = (rx + PAD) % S;
    const offH = (ry + PAD - ky0) / S, offW = (rx + PAD - kx0) / S;
    const taps = range(kh).filter((ky) => ky % S === ky0).flatMap((ky) =>
      range(kw).filter((kx) => kx % S === kx0).map((kx) => ({
        ky,
        kx,
        row: offH - (ky - ky0) / S, // dy row relative to i
        col: offW - (kx - kx0) / S, // dy column relative to j + q
      }))
    );
    return { ry, rx, taps };
  });
  const taps = phases.flatMap((p) => p.taps);
  const R = phaseRows(Cin, S);
  const rows = [...new Set(taps.flatMap((t) => range(R).map((r) => t.row + r)))];
  const cols = [...new Set(taps.flatMap((t) => range(RUN).map((q) => t.col + q)))];
  const name = (d: number) => (d < 0 ? `m${-d}` : `${d}`);
  const outputs = (f: (r: number, ry: number, rx: number, ci: number, q: number) => string) =>
    each(
      range(R),
      (r) =>
        each(phases, ({ ry, rx }) => each(range(Cin), (ci) => each(range(RUN), (q) => f(r, ry, rx, ci, q)))),
    );
  const acc = (r: number, ry: number, rx: number, ci: number, q: number) => `acc${r}_${ry}_${rx}_${ci}_${q}`;
  const wAt = (ci: number, ky: number, kx: number) => `w${ci}_${ky}_${kx}`;
  const dyAt = (row: number, col: number) => `d${name(row)}_${name(col)}`;
  return {
    buffers: { dy: read(), w: read(), dx: readWrite() },
    declarations: constants(consts),
    workgroupSize: WORKGROUP,
    flat: { index: "index" },
    body: /* wgsl */ `
  let runs = (WP + ${RUN - 1}u) / ${RUN}u; let bands = (HP + ${R - 1}u) / ${R}u;
  if (index >= Nb * bands * runs) { return; }
  let img = index / (bands * runs); let i = index % (bands * runs) / runs * ${R}u; let j = index % runs * ${RUN}u;
${each(rows, (r) => `  let oh${name(r)} = ${offset("i", r)};`)}
${each(cols, (c) => `  let ow${name(c)} = ${offset("j", c)};`)}
${outputs((r, ry, rx, ci, q) => `  var ${acc(r, ry, rx, ci, q)} = 0.0;`)}
  for (var co = 0u; co < Cout; co++) {
    let plane = (img * Cout + co) * OH;
${
      each(rows, (r) =>
        each(cols, (c) => {
          const [oh, ow] = [`oh${name(r)}`, `ow${name(c)}`], inside = `${oh} < OH && ${ow} < OW`;
          return `    let ${dyAt(r, c)} = select(0.0, dy[(plane + ${oh}) * OW + ${ow}], ${inside});`;
        }))
    }
${
      each(range(Cin), (ci) =>
        each(taps, ({ ky, kx }) =>
          `    let ${wAt(ci, ky, kx)} = w[(co * Cin + ${ci}u) * kh * kw + ${ky * kw + kx}u];`))
    }
${
      each(range(R), (r) =>
        each(phases, ({ ry, rx, taps }) =>
          each(taps, ({ ky, kx, row, col }) =>
            each(range(Cin), (ci) =>
              each(range(RUN), (q) => {
                const a = acc(r, ry, rx, ci, q);
                return `    ${a} = fma(${wAt(ci, ky, kx)}, ${dyAt(row + r, col + q)}, ${a});`;
              })))))
    }
  }
${
      outputs((r, ry, rx, ci, q) => {
        const ih = `(i + ${r}u) * S + ${ry}u`, iw = `(j + ${q}u) * S + ${rx}u`;
        return `  if (${ih} < H && ${iw} < W) { dx[((img * Cin + ${ci}u) * H + ${ih}) * W + ${iw}] = ${
          acc(r, ry, rx, ci, q)
        }; }`;
      })
    }
`,
  };
});

/** conv2dGradInput by the direct kernel. */
export function conv2dGradInputFewChannels(
  gy: Tensor,
  w: Tensor,
  inShape: Shape,
  geo: Conv2dGeometry,
): Tensor {
  const [Nb, Cin, H, W] = inShape, [, , kh, kw] = w.shape, s = geo.stride;
  const dx = gpuTensor(gy, inShape);
  const TY = Math.ceil(kh / s), TX = Math.ceil(kw / s), HP = Math.ceil(H / s), WP = Math.ceil(W / s);
  const threads = Nb * Math.ceil(HP / phaseRows(Cin, s)) * Math.ceil(WP / RUN);
  GRAD_INPUT.record(runtimeOf(gy), {
    variant: { ...convConstants(inShape, gy.shape, kh, kw, geo), TY, TX, HP, WP },
    buffers: { dy: bufferOf(gy), w: bufferOf(w), dx: bufferOf(dx) },
    threads,
  });
  return dx;
}
