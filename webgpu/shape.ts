/** window: out[i] = x[i + offset] where that index is inside x, else 0 (slice, pad, concat). */
import type { Kernels } from "../engine/backend.ts";
import { stridesOf } from "../engine/host.ts";
import { bufferOf, gpuTensor, runtimeOf } from "./runtime.ts";
import { kernel, read, readWrite } from "./wgsl.ts";

const WINDOW = kernel("window", (rank: number) => ({
  params: { n: "u32", shape: "dims", offset: "dims", xShape: "dims", xStride: "dims" },
  buffers: { xs: read(), ys: readWrite() },
  flat: { index: "i", count: "p.n" },
  body: /* wgsl */ `
  var r = i; var src = 0; var inside = true;
  for (var d = ${rank - 1}; d >= 0; d--) {
    let size = dim(p.shape, u32(d));
    let k = i32(r % size) + idim(p.offset, u32(d));
    r = r / size;
    inside = inside && k >= 0 && k < i32(dim(p.xShape, u32(d)));
    src += k * i32(dim(p.xStride, u32(d)));
  }
  ys[i] = select(0.0, xs[max(src, 0)], inside);`,
}));

export const shapeGpu: Pick<Kernels, "window"> = {
  window(x, shape, offset) {
    const y = gpuTensor(x, shape);
    WINDOW.record(runtimeOf(x), {
      variant: shape.length,
      params: { n: y.size, shape, offset, xShape: x.shape, xStride: stridesOf(x.shape) },
      buffers: { xs: bufferOf(x), ys: bufferOf(y) },
      threads: y.size,
    });
    return y;
  },
};
