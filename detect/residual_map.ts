/**
 * The residual map of a whole image at its own size: tile it as the test set is prepared, reconstruct every
 * tile with the model, take the SSIM or L2 residual per tile exactly as the evaluation does
 * (eval/residual.ts), and stitch the tiles' maps back (tiling.ts).
 */
import type { Backend } from "../engine/backend.ts";
import { tensor } from "../engine/create.ts";
import { noGrad, tidy } from "../engine/tensor.ts";
import { type Image, toChannels } from "../data/image.ts";
import { PAPER_GEOMETRY } from "../data/prepare.ts";
import { l2Residual, ssimResidual } from "../eval/residual.ts";
import { validSsimMap } from "../eval/ssim_map.ts";
import type { Detector, ResidualKind } from "./detector.ts";
import { stitchMaps, tileImage } from "./tiling.ts";

/** width x height residuals of `image` (any channel count: it is converted to the model's). */
export async function residualMap(
  detector: Detector,
  image: Image,
  kind: ResidualKind,
  device: Backend,
): Promise<Float32Array> {
  const geometry = PAPER_GEOMETRY;
  if (detector.size !== geometry.size) {
    throw new Error(
      `${detector.path}: the model takes ${detector.size}x${detector.size} patches, ` +
        `the paper's preparation makes ${geometry.size}x${geometry.size}`,
    );
  }
  const { shape, images, content, span } = tileImage(toChannels(image, detector.channels), geometry);
  const reconstructed = tidy(() => noGrad(() => detector.model.forward(tensor(images, shape, { device }))));
  const output = Float32Array.from(await reconstructed.data());
  reconstructed.dispose();
  const maps = kind === "ssim"
    ? ssimResidual(await validSsimMap({ shape, input: images, output }, device), shape, content)
    : l2Residual(images, output, shape, content);
  return stitchMaps(maps, span, geometry, image.width, image.height);
}
