/**
 * Matrix products. With C = op(A) op(B), where op is an optional transpose:
 *
 *   dA = dC op(B)ᵀ  (or op(B) dCᵀ when A is transposed)
 *   dB = op(A)ᵀ dC  (or dCᵀ op(A) when B is transposed)
 *
 * linear(x, W, b) = x Wᵀ + b, as torch.nn.functional.linear.
 */
import type { Kernels } from "../backend.ts";
import { hostTensor, newArray } from "../host.ts";
import { record, shapeString, type Tensor } from "../tensor.ts";
import { add } from "./elementwise.ts";
import { reshape } from "./shape.ts";

export const matmulCpu: Pick<Kernels, "matmul"> = {
  matmul(a, b, transA, transB) {
    const [B, ra, ca] = a.shape, [, rb, cb] = b.shape;
    const M = transA ? ca : ra, K = transA ? ra : ca, N = transB ? rb : cb;
    const as = a.cpuData(), bs = b.cpuData(), out = newArray(a.dtype, B * M * N);
    for (let n = 0; n < B; n++) {
      const oa = n * ra * ca, ob = n * rb * cb;
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) {
            s += as[oa + (transA ? k * ca + i : i * ca + k)] * bs[ob + (transB ? j * cb + k : k * cb + j)];
          }
          out[(n * M + i) * N + j] = s;
        }
      }
    }
    return hostTensor(a, out, [B, M, N]);
  },
};

function matmulOp(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  const k = a.device;
  const y = k.matmul(a, b, transA, transB);
  return record(y, [a, b], (gy) => [
    a.requiresGrad ? (transA ? k.matmul(b, gy, transB, true) : k.matmul(gy, b, false, !transB)) : null,
    b.requiresGrad ? (transB ? k.matmul(gy, a, true, transA) : k.matmul(a, gy, !transA, false)) : null,
  ]);
}

/** [M, K] @ [K, N] -> [M, N], or batched [B, M, K] @ [B, K, N] -> [B, M, N]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const batched = a.ndim === 3;
  const ok = a.ndim === b.ndim && (a.ndim === 2 || batched) && a.shape.at(-1) === b.shape.at(-2) &&
    (!batched || a.shape[0] === b.shape[0]);
  if (!ok) {
    throw new Error(`matmul: shapes ${shapeString(a.shape)} and ${shapeString(b.shape)} do not multiply`);
  }
  if (batched) return matmulOp(a, b, false, false);
  const y = matmulOp(reshape(a, [1, ...a.shape]), reshape(b, [1, ...b.shape]), false, false);
  return reshape(y, [a.shape[0], b.shape[1]]);
}

/** y = x Wᵀ + b for x [N, in], W [out, in], b [out]. */
export function linear(x: Tensor, w: Tensor, b: Tensor | null = null): Tensor {
  if (
    x.ndim !== 2 || w.ndim !== 2 || x.shape[1] !== w.shape[1] ||
    (b && (b.ndim !== 1 || b.shape[0] !== w.shape[0]))
  ) {
    throw new Error(
      `linear: x ${shapeString(x.shape)}, weight ${shapeString(w.shape)}, bias ${
        b ? shapeString(b.shape) : "none"
      }`,
    );
  }
  const xw3 = matmulOp(reshape(x, [1, ...x.shape]), reshape(w, [1, ...w.shape]), false, true);
  const xw = reshape(xw3, [x.shape[0], w.shape[0]]);
  return b ? add(xw, b) : xw;
}
