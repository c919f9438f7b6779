/** The public API: the tensor engine, its functional ops, optimisers, modules and weight files. */
export type { Backend, DeviceName, DType, Sampler, Shape } from "./engine/backend.ts";
export * from "./engine/tensor.ts";
export * from "./engine/create.ts";
export * from "./engine/device.ts";
export * from "./engine/random.ts";
export * from "./engine/ops/index.ts";
export * from "./engine/optim.ts";
export * from "./engine/init.ts";
export * from "./engine/nn.ts";
export * from "./engine/safetensors.ts";
export * from "./models/autoencoder.ts";
export * from "./models/stn.ts";
export { configurationNamed, CONFIGURATIONS, configureModel } from "./train/configurations.ts";
export { lossVersusAngle, orientationLoss, orientationSpread } from "./train/orientation.ts";
export { train } from "./train/trainer.ts";
