/**
 * Which WGSL computes each conv kernel. Read conv2d_naive.ts first: one thread per output, the
 * formulas as loops. The kernels used are faster arrangements of the same sums:
 *
 *   window covers the whole unpadded input   a fully connected layer, y = x wᵀ with x [Nb, Cin·H·W]:
 *   (Table 1's 8x8 latent layer)             all three kernels are plain matmuls (matmul.ts); the
 *                                            gather form of its input gradient would visit kh·kw taps
 *                                            per pixel of which one is inside dy
 *   Cin ≤ FEW_CHANNELS, gradients            direct kernels (conv2d_few_channels.ts): a GEMM would fill
 *                                            few tile rows (M = Cin) or columns (N = Cin·kh·kw)
 *   otherwise                                implicit GEMMs (conv2d_gemm.ts)
 */
import type { Conv2dGeometry, Kernels, Shape } from "../engine/backend.ts";
import { dispatchMatmul } from "./matmul.ts";
import { gpuTensor } from "./runtime.ts";
import { conv2dGemm, conv2dGradInputGemm, conv2dGradWeightGemm } from "./conv2d_gemm.ts";
import { conv2dGradInputFewChannels, conv2dGradWeightFewChannels } from "./conv2d_few_channels.ts";

/** Input channels up to which the input gradient and the weight gradient run as direct kernels. */
const FEW_CHANNELS = 4;

/** No padding and a window as large as the input: one output pixel that sees every input element. */
function coversInput([, , H, W]: Shape, kh: number, kw: number, geo: Conv2dGeometry): boolean {
  return geo.padding === 0 && kh === H && kw === W;
}

export const conv2dGpu: Pick<Kernels, "conv2d" | "conv2dGradInput" | "conv2dGradWeight"> = {
  conv2d(x, w, bias, geo) {
    const [Nb, Cin] = x.shape, [Cout, , kh, kw] = w.shape;
    if (!coversInput(x.shape, kh, kw, geo)) return conv2dGemm(x, w, bias, geo);
    const y = gpuTensor(x, [Nb, Cout, 1, 1]);
    dispatchMatmul(x, { Z: 1, M: Nb, N: Cout, K: Cin * kh * kw, transA: false, transB: true }, x, w, y, bias);
    return y;
  },
  conv2dGradInput(gy, w, inShape, geo) {
    const [Nb, Cin] = inShape, [Cout, , kh, kw] = w.shape;
    if (coversInput(inShape, kh, kw, geo)) {
      const dx = gpuTensor(gy, inShape), dims = { Z: 1, M: Nb, N: Cin * kh * kw, K: Cout };
      dispatchMatmul(gy, { ...dims, transA: false, transB: false }, gy, w, dx, null);
      return dx;
    }
    if (Cin <= FEW_CHANNELS) return conv2dGradInputFewChannels(gy, w, inShape, geo);
    return conv2dGradInputGemm(gy, w, inShape, geo);
  },
  conv2dGradWeight(x, gy, [kh, kw], geo) {
    const [Nb, Cin] = x.shape, [, Cout] = gy.shape;
    if (coversInput(x.shape, kh, kw, geo)) {
      const dw = gpuTensor(x, [Cout, Cin, kh, kw]), dims = { Z: 1, M: Cout, N: Cin * kh * kw, K: Nb };
      dispatchMatmul(x, { ...dims, transA: true, transB: false }, gy, x, dw, null);
      return dw;
    }
    if (Cin <= FEW_CHANNELS) return conv2dGradWeightFewChannels(x, gy, kh, kw, geo);
    return conv2dGradWeightGemm(x, gy, kh, kw, geo);
  },
};
