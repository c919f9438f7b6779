/**
 * The CPU reference backend: plain loops over typed arrays, float32 or float64. Each op's loops live
 * next to the op in `engine/ops/`; this file only owns memory and gathers them.
 */
import type { Backend } from "./backend.ts";
import { dtypeOf, newArray } from "./host.ts";
import { Storage, Tensor } from "./tensor.ts";
import { elementwiseCpu } from "./ops/elementwise.ts";
import { reduceCpu } from "./ops/reduce.ts";
import { shapeCpu } from "./ops/shape.ts";
import { matmulCpu } from "./ops/matmul.ts";
import { conv2dCpu } from "./ops/conv2d.ts";
import { filter2dCpu } from "./ops/filter2d.ts";
import { maxPoolCpu } from "./ops/max_pool.ts";
import { interpolateCpu } from "./ops/interpolate.ts";
import { gridSampleCpu } from "./ops/grid_sample.ts";
import { adamCpu } from "./ops/adam.ts";

export const cpu: Backend = {
  name: "cpu",
  hostMemory: true,
  float64: true,
  queued: false,
  fromData: (data, shape) =>
    new Tensor(shape, dtypeOf(data), new Storage(cpu, data.slice(), data.byteLength)),
  read: (x) => Promise.resolve(x.cpuData().slice()),
  release: () => {},
  flush: () => {},
  full(shape, value, dtype) {
    const data = newArray(dtype, shape.reduce((a, b) => a * b, 1)).fill(value);
    return new Tensor(shape, dtype, new Storage(cpu, data, data.byteLength));
  },
  ...elementwiseCpu,
  ...reduceCpu,
  ...shapeCpu,
  ...matmulCpu,
  ...conv2dCpu,
  ...filter2dCpu,
  ...maxPoolCpu,
  ...interpolateCpu,
  ...gridSampleCpu,
  ...adamCpu,
};
