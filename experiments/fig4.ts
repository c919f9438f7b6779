/**
 * Fig. 4: rotate a zero-padded patch by 45° and back, with the exact sampler and with the naive one
 * (the TensorFlow STN of 2016, which the paper blames for the failure of STN+AE), and measure what
 * the round trip destroys inside the content region, on the 0-255 scale.
 */
import type { Backend } from "../engine/backend.ts";
import { tensor } from "../engine/create.ts";
import { affineGrid, gridSample, rotationTheta } from "../engine/ops/grid_sample.ts";
import { noGrad, tidy } from "../engine/tensor.ts";
import type { Sampler } from "../engine/backend.ts";
import { createImage } from "../data/image.ts";
import { writePngFile } from "../data/image_file.ts";
import type { PatchSet } from "../data/prepare.ts";
import type { Fig4Result, SamplerRoundTrip, Untimed } from "./results.ts";

/** Differences are shown ×8 so that the exact sampler's small errors are visible at all. */
const DIFFERENCE_GAIN = 8;

async function roundTrip(
  x: Float32Array,
  shape: number[],
  degrees: number,
  sampler: Sampler,
  device: Backend,
) {
  // The naive sampler's grid is linspace(-1, 1): affine_grid with align_corners = true.
  const alignCorners = sampler === "naive";
  const out = tidy(() =>
    noGrad(() => {
      const input = tensor(x, shape, { device });
      const rotate = (img: typeof input, deg: number) => {
        const theta = rotationTheta(tensor([(deg * Math.PI) / 180], [1], { device }));
        return gridSample(img, affineGrid(theta, img.shape, { alignCorners }), { alignCorners, sampler });
      };
      return rotate(rotate(input, degrees), -degrees);
    })
  );
  const data = await out.data();
  out.dispose();
  return data;
}

export async function samplerRoundTrip(
  patches: PatchSet,
  index: number,
  degrees: number,
  device: Backend,
  runDir: string,
  className: string,
  id: string,
): Promise<Untimed<Fig4Result>> {
  const { channels: c, size } = patches;
  const plane = size * size;
  const x = patches.images.slice(index * c * plane, (index + 1) * c * plane);
  const content = patches.content.subarray(index * plane, (index + 1) * plane);
  const inputImage = createImage(c, size, size);
  inputImage.data.set(x);
  await writePngFile(`${runDir}/input.png`, inputImage);

  const samplers: SamplerRoundTrip[] = [];
  for (const sampler of ["exact", "naive"] as const) {
    const back = await roundTrip(x, [1, c, size, size], degrees, sampler, device);
    const error = new Float32Array(plane); // mean |error| over channels, 0-255
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < plane; p++) {
        error[p] += (Math.abs(back[ch * plane + p] - x[ch * plane + p]) * 255) / c;
      }
    }
    let sum = 0, max = 0, count = 0;
    for (let p = 0; p < plane; p++) {
      if (!content[p]) continue;
      sum += error[p];
      max = Math.max(max, error[p]);
      count++;
    }
    const width = Math.max(1, Math.ceil(max / 40));
    const histogram = Array.from({ length: Math.floor(max / width) + 1 }, (_, k) => ({
      from: k * width,
      to: (k + 1) * width,
      count: 0,
    }));
    const picture = createImage(1, size, size);
    for (let p = 0; p < plane; p++) {
      if (content[p]) histogram[Math.floor(error[p] / width)].count++;
      picture.data[p] = content[p] ? Math.min(1, (error[p] * DIFFERENCE_GAIN) / 255) : 0;
    }
    const differenceImage = `difference_${sampler}.png`;
    await writePngFile(`${runDir}/${differenceImage}`, picture);
    samplers.push({ sampler, meanError255: sum / count, maxError255: max, histogram, differenceImage });
  }
  return { kind: "fig4", id, className, angle: degrees, input: "input.png", samplers };
}
