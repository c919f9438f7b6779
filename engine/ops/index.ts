/** The functional API, named after torch.nn.functional in camelCase. */
export * from "./elementwise.ts";
export { mean, sum } from "./reduce.ts";
export * from "./shape.ts";
export * from "./matmul.ts";
