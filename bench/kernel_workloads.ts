/**
 * The kernel workloads the benchmarks time: conv2d forward, input gradient and weight gradient at every
 * layer of the Table-1 autoencoder (batch 16), and a 1024-cube matmul. Shared by the `deno bench` file
 * (kernels_bench.ts) and the table script (kernels.ts).
 *
 * Each decoder layer is the transposed convolution that mirrors an encoder layer, so its three kernels
 * are conv2dGradInput (forward), conv2d (input gradient) and conv2dGradWeight with the big tensor as x.
 */
import type { Backend, Conv2dGeometry, Shape } from "../engine/backend.ts";
import { uniform } from "../engine/create.ts";
import { slidingOutputSize } from "../engine/ops/conv2d.ts";
import { Random } from "../engine/random.ts";
import type { Tensor } from "../engine/tensor.ts";
import type { WebGPUBackend } from "../webgpu/runtime.ts";
import { encoderSpecs } from "../models/autoencoder.ts";

export const BATCH = 16;

/** A convolution of x [BATCH, cin, size, size] by a k x k kernel into cout channels. */
export interface ConvLayer {
  cin: number;
  cout: number;
  size: number;
  kernel: number;
  geo: Conv2dGeometry;
}

const layer = (cin: number, cout: number, size: number, kernel: number, stride: number, padding: number) => ({
  cin,
  cout,
  size,
  kernel,
  geo: { stride, padding },
});

/** Table 1's encoder for a 128x128x3 input and d = 100, from the model's own layer list. */
export const ENCODER: ConvLayer[] = encoderSpecs(32, 100, 128).reduce<ConvLayer[]>((layers, s) => {
  const previous = layers.at(-1);
  const [cin, size] = previous ? [previous.cout, outputSize(previous)] : [3, 128];
  return [...layers, layer(cin, s.out, size, s.kernel, s.stride, s.padding)];
}, []);

/** Layer 1 for an embedded gray class (1 channel in), which the default reproduce run trains. */
export const GRAY_INPUT_LAYER: ConvLayer = { ...ENCODER[0], cin: 1 };

/**
 * The layers a pass runs through, numbered in that pass's order (the decoder's layer 1 mirrors the
 * latent layer), with layer 1's 1-channel variant beside its 3-channel one.
 */
export function passLayers(direction: Direction): { number: number; layer: ConvLayer }[] {
  const layers = [GRAY_INPUT_LAYER, ...ENCODER];
  const fromInput = layers.map((layer, i) => ({ number: Math.max(1, i), layer }));
  if (direction === "encoder") return fromInput;
  return fromInput.toReversed().map(({ number, layer }) => ({ number: ENCODER.length + 1 - number, layer }));
}

export function outputSize({ size, kernel, geo }: ConvLayer): number {
  return slidingOutputSize(size, size, kernel, kernel, geo)[0];
}

/** Multiply-adds x 2 of one pass: every kernel of a layer does the same useful work. */
export function convFlops(l: ConvLayer): number {
  return 2 * BATCH * l.cout * outputSize(l) ** 2 * l.cin * l.kernel ** 2;
}

export type Role = "forward" | "input grad" | "weight grad";
export const ROLES: Role[] = ["forward", "input grad", "weight grad"];
export type Direction = "encoder" | "decoder";

/** "128x128x3 -> 64x64x32 conv 4x4 s2 p1", or the transposed layer's way for the decoder. */
export function describe(l: ConvLayer, direction: Direction): string {
  const o = outputSize(l), big = `${l.size}x${l.size}x${l.cin}`, small = `${o}x${o}x${l.cout}`;
  const kernel = `${l.kernel}x${l.kernel} s${l.geo.stride} p${l.geo.padding}`;
  return direction === "encoder" ? `${big} -> ${small} conv ${kernel}` : `${small} -> ${big} convT ${kernel}`;
}

/** One launch of a kernel; it returns the output so the caller can dispose it. */
export type Launch = () => Tensor;

/** Random operands on `device` and the launch of one layer's kernel in one role. */
export function convLaunch(device: Backend, l: ConvLayer, direction: Direction, role: Role): Launch {
  const rng = new Random(1);
  const o = outputSize(l);
  const big: Shape = [BATCH, l.cin, l.size, l.size], small: Shape = [BATCH, l.cout, o, o];
  const x = uniform(big, -1, 1, rng, { device }), y = uniform(small, -1, 1, rng, { device });
  const w = uniform([l.cout, l.cin, l.kernel, l.kernel], -0.1, 0.1, rng, { device });
  const kernels: Record<Role, Launch> = {
    forward: () => device.conv2d(x, w, null, l.geo),
    "input grad": () => device.conv2dGradInput(y, w, big, l.geo),
    "weight grad": () => device.conv2dGradWeight(x, y, [l.kernel, l.kernel], l.geo),
  };
  // A decoder layer's forward is the encoder's input gradient and the other way round.
  const swapped: Record<Role, Role> = {
    forward: "input grad",
    "input grad": "forward",
    "weight grad": "weight grad",
  };
  return kernels[direction === "encoder" ? role : swapped[role]];
}

export const MATMUL_SIDE = 1024;
export const MATMUL_FLOPS = 2 * MATMUL_SIDE ** 3;

export function matmulLaunch(device: Backend): Launch {
  const rng = new Random(2), shape = [1, MATMUL_SIDE, MATMUL_SIDE];
  const a = uniform(shape, -1, 1, rng, { device }), b = uniform(shape, -1, 1, rng, { device });
  return () => device.matmul(a, b, false, false);
}

/** Wait until the device has finished all submitted work (GPU work runs asynchronously). */
export async function settle(device: Backend): Promise<void> {
  device.flush();
  if (device.name === "webgpu") await (device as WebGPUBackend).runtime.device.queue.onSubmittedWorkDone();
}

/**
 * CPU time of this process in milliseconds, all threads (lavapipe's workers included), from
 * /proc/self/stat (utime + stime, in 100 Hz ticks); null where that file does not exist.
 */
export function processCpuMs(): number | null {
  try {
    const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}
