/**
 * What each kind of training minimises, as a function of one batch: Eq. 7 for the STN's orientation
 * pre-training (Section 6), and the content-masked L2 for the autoencoder configurations (Section 8.1).
 */
import { add, affine, div, mul, square, sub, sum } from "../engine/ops/index.ts";
import type { Tensor } from "../engine/tensor.ts";
import type { Autoencoder } from "../models/autoencoder.ts";
import type { RotationStn } from "../models/stn.ts";
import { orientationLoss } from "./orientation.ts";
import type { PatchBatch } from "./patch_batch.ts";

export type Objective = (batch: PatchBatch) => Tensor;

/**
 * L2 over the content region: Σ M (y - x)² / (C Σ M), the mean over content pixels and channels; the mask
 * M [B, 1, H, W] broadcasts over the channels.
 */
export function contentMse(input: Tensor, output: Tensor, content: Tensor): Tensor {
  const squared = mul(square(sub(output, input)), content);
  return div(sum(squared), affine(sum(content), input.shape[1]));
}

/** Section 8.1: the input against the (inverse-transformed) reconstruction. */
export function reconstructionObjective(model: Autoencoder): Objective {
  return (batch) => contentMse(batch.images, model.forward(batch.images), batch.content);
}

/** Section 6: Eq. 7 on the STN's output; the mask follows the total rotation, recorded angle plus alpha. */
export function orientationObjective(stn: RotationStn, contentHalfWidth: number): Objective {
  return (batch) => {
    const { alpha, normalised } = stn.forward(batch.images);
    return orientationLoss(normalised, add(batch.radians, alpha.detach()), contentHalfWidth);
  };
}
