/** Every op's test cases; tests/ops_test.ts runs them on every device. */
import type { OpCase } from "../harness.ts";
import { elementwiseCases, matmulCases, reduceCases, shapeCases } from "./elementwise.ts";

export const OP_CASES: OpCase[] = [
  ...elementwiseCases,
  ...reduceCases,
  ...shapeCases,
  ...matmulCases,
];
