/** Every op's test cases; tests/ops_test.ts runs them on every device. */
import type { OpCase } from "../harness.ts";
import { elementwiseCases, matmulCases, reduceCases, shapeCases } from "./elementwise.ts";
import { gridSampleCases } from "./grid_sample.ts";
import { convCases } from "./conv.ts";
import { filter2dCases } from "./filter2d.ts";
import { maxPoolCases } from "./max_pool.ts";
import { interpolateCases } from "./interpolate.ts";
import { lossCases } from "./losses.ts";
import { ssimCases } from "./ssim.ts";

export const OP_CASES: OpCase[] = [
  ...elementwiseCases,
  ...reduceCases,
  ...shapeCases,
  ...matmulCases,
  ...gridSampleCases,
  ...convCases,
  ...filter2dCases,
  ...maxPoolCases,
  ...interpolateCases,
  ...lossCases,
  ...ssimCases,
];
