/**
 * The contract between the autodiff layer and a device.
 *
 * A backend owns memory and implements device primitives ("kernels"). Kernels take and return
 * tensors without autodiff; the differentiable ops in `engine/ops/` wrap them and say how gradients
 * flow. Every kernel has two implementations written independently: the CPU reference (plain loops,
 * next to the op in `engine/ops/<op>.ts`) and each device's own (WGSL in `webgpu/<op>.ts`). Every backend
 * implements the whole `Kernels` interface, so the type checker tells when one is missing. Devices are
 * registered by name in `engine/device.ts`.
 */
import type { Tensor } from "./tensor.ts";

/** A registered device's name ("cpu", "webgpu", ...; see `deviceNames()`). */
export type DeviceName = string;
export type DType = "float32" | "float64";
export type TypedData = Float32Array | Float64Array;
export type Shape = readonly number[];

/** Elementwise functions of one input. `params` carries slope (leakyRelu), lo/hi (clamp), scale/shift (affine). */
export type UnaryOp =
  | "neg"
  | "square"
  | "abs"
  | "sqrt"
  | "exp"
  | "log"
  | "sin"
  | "cos"
  | "relu"
  | "leakyRelu"
  | "sigmoid"
  | "clamp"
  | "affine";
export interface UnaryParams {
  slope?: number;
  lo?: number;
  hi?: number;
  scale?: number;
  shift?: number;
}
export type BinaryOp = "add" | "sub" | "mul" | "div";
/** "exact": PyTorch's grid_sample convention. "naive": the TensorFlow STN (2016) sampler the paper criticises. */
export type Sampler = "exact" | "naive";

export interface Conv2dGeometry {
  stride: number;
  padding: number;
}

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count, for bias correction. */
  step: number;
}

export interface Kernels {
  /** A new tensor of `shape` filled with `value`. */
  full(shape: Shape, value: number, dtype: DType): Tensor;
  /** y = f(x) elementwise. */
  unary(op: UnaryOp, x: Tensor, params: UnaryParams): Tensor;
  /** gx = gy * f'(x) elementwise. */
  unaryGrad(op: UnaryOp, x: Tensor, gy: Tensor, params: UnaryParams): Tensor;
  /** Elementwise with NumPy broadcasting (shapes aligned at the trailing dimension). */
  binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor;
  /** Sum over `dims`, keeping them as size 1. */
  sumDims(x: Tensor, dims: readonly number[]): Tensor;
  /** Broadcast x (same rank, size-1 dims) to `shape`. */
  expand(x: Tensor, shape: Shape): Tensor;
  /** out[i] = x[i + offset] where that index is inside x, else 0. Slice, pad and concat are windows. */
  window(x: Tensor, shape: Shape, offset: readonly number[]): Tensor;
  /** Batched matrix product of [B, M, K] and [B, K, N] (with optional transposes of the last two dims). */
  matmul(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor;
  /** Cross-correlation of x [N, Cin, H, W] with w [Cout, Cin, kh, kw], plus bias [Cout]. */
  conv2d(x: Tensor, w: Tensor, bias: Tensor | null, geo: Conv2dGeometry): Tensor;
  /** dL/dx of conv2d given dL/dy; also the forward of convTranspose2d. `inShape` is x's shape. */
  conv2dGradInput(gy: Tensor, w: Tensor, inShape: Shape, geo: Conv2dGeometry): Tensor;
  /** dL/dw of conv2d given x and dL/dy; `kernel` is [kh, kw]. */
  conv2dGradWeight(x: Tensor, gy: Tensor, kernel: readonly [number, number], geo: Conv2dGeometry): Tensor;
  /** Max pooling; also returns the flat in-plane index (h * W + w) of each maximum, as floats. */
  maxPool2d(x: Tensor, kernel: number, stride: number): { y: Tensor; argmax: Tensor };
  /** Gather form of the max-pool gradient: each input pixel sums gy over the windows whose max it is. */
  maxPool2dGrad(gy: Tensor, argmax: Tensor, inShape: Shape, kernel: number, stride: number): Tensor;
  /** The same fixed kh x kw kernel applied to every channel (depthwise), zero padding, stride 1. */
  filter2d(x: Tensor, kernel: Float64Array, kh: number, kw: number, padding: number): Tensor;
  /** Bilinear resize of x [N, C, H, W] to [N, C, outH, outW]. */
  interpolate(x: Tensor, outH: number, outW: number, alignCorners: boolean): Tensor;
  interpolateGrad(gy: Tensor, inShape: Shape, alignCorners: boolean): Tensor;
  /** Sampling grid [N, H, W, 2] of the affine maps theta [N, 2, 3]. */
  affineGrid(theta: Tensor, size: Shape, alignCorners: boolean): Tensor;
  affineGridGrad(gGrid: Tensor, alignCorners: boolean): Tensor;
  /** Bilinear sampling of x [N, C, H, W] at grid [N, Ho, Wo, 2], zero padding. */
  gridSample(x: Tensor, grid: Tensor, alignCorners: boolean, sampler: Sampler): Tensor;
  gridSampleGrad(
    gy: Tensor,
    x: Tensor,
    grid: Tensor,
    alignCorners: boolean,
    sampler: Sampler,
    wanted: { x: boolean; grid: boolean },
  ): { gx: Tensor | null; gGrid: Tensor | null };
  /** One Adam step over every parameter, in place (param, m and v are updated). */
  adam(params: Tensor[], grads: Tensor[], m: Tensor[], v: Tensor[], hyper: AdamHyper): void;
}

export interface Backend extends Kernels {
  readonly name: DeviceName;
  /** Its tensors' data is a host typed array (`Tensor.cpuData()` works without a copy). */
  readonly hostMemory: boolean;
  /** It holds float64 tensors (gradient checks); otherwise float32 only. */
  readonly float64: boolean;
  /** Its work is queued and runs asynchronously, so reading a value back waits for the queue. */
  readonly queued: boolean;
  /** Copy host data to the device. */
  fromData(data: TypedData, shape: Shape): Tensor;
  /** Copy a tensor's data back to the host. */
  read(x: Tensor): Promise<TypedData>;
  /** Return a tensor's memory to the backend (called when its last reference is disposed). */
  release(storage: unknown): void;
  /** Submit pending work, if the device queues it. */
  flush(): void;
}
