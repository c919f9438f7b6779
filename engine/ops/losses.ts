/**
 * Reconstruction losses with mean reduction, as F.mse_loss and F.l1_loss, composed from
 * differentiable ops (so their gradients come from those ops):
 *
 *   mseLoss(a, b) = mean((a − b)²)     l1Loss(a, b) = mean(|a − b|)
 *
 * Unlike PyTorch, which only warns, shapes must match exactly: a broadcast here is always a bug.
 */
import { shapeEquals, shapeString, type Tensor } from "../tensor.ts";
import { abs, square, sub } from "./elementwise.ts";
import { mean } from "./reduce.ts";

function difference(op: string, a: Tensor, b: Tensor): Tensor {
  if (!shapeEquals(a.shape, b.shape)) {
    throw new Error(`${op}: shapes ${shapeString(a.shape)} and ${shapeString(b.shape)} differ`);
  }
  return sub(a, b);
}

export const mseLoss = (a: Tensor, b: Tensor): Tensor => mean(square(difference("mseLoss", a, b)));
export const l1Loss = (a: Tensor, b: Tensor): Tensor => mean(abs(difference("l1Loss", a, b)));
