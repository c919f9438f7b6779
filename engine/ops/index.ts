/** The functional API, named after torch.nn.functional in camelCase. */
export * from "./elementwise.ts";
export { mean, sum } from "./reduce.ts";
export * from "./shape.ts";
export * from "./matmul.ts";
export { conv2d, convTranspose2d } from "./conv2d.ts";
export { filter2d, gaussianKernel, SOBEL_X } from "./filter2d.ts";
export { maxPool2d } from "./max_pool.ts";
export { interpolate } from "./interpolate.ts";
export { l1Loss, mseLoss } from "./losses.ts";
export { affineGrid, gridSample, rotationTheta } from "./grid_sample.ts";
export { ssim, ssimMap } from "./ssim.ts";
