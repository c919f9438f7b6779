/**
 * The in-memory image used by the whole data layer: float32 in [0, 1], channels-first (C, H, W).
 * Masks are separate Uint8Array (H, W) planes holding 0 or 1.
 */
export interface Image {
  channels: number;
  height: number;
  width: number;
  data: Float32Array;
}

/** ITU-R BT.601 luma weights, used for RGB -> gray. */
const BT601 = [0.299, 0.587, 0.114] as const;

export function createImage(channels: number, height: number, width: number): Image {
  return { channels, height, width, data: new Float32Array(channels * height * width) };
}

/**
 * Converts an image to 1 or 3 channels. Gray -> RGB replicates the plane; RGB -> gray uses BT.601.
 * An alpha channel (2 or 4 channels) is dropped first: the data sets are opaque photographs.
 */
export function toChannels(image: Image, channels: 1 | 3): Image {
  const colour = image.channels >= 3 ? 3 : 1;
  const plane = image.height * image.width;
  const out = createImage(channels, image.height, image.width);
  if (colour === channels) {
    out.data.set(image.data.subarray(0, channels * plane));
  } else if (channels === 3) {
    for (let c = 0; c < 3; c++) out.data.set(image.data.subarray(0, plane), c * plane);
  } else {
    for (let i = 0; i < plane; i++) {
      out.data[i] = BT601[0] * image.data[i] + BT601[1] * image.data[plane + i] +
        BT601[2] * image.data[2 * plane + i];
    }
  }
  return out;
}

/**
 * A mask from a mask image: 1 where a colour channel exceeds 127 of 255 (MVTec's convention). Taking the
 * brightest colour channel lets RGB masks in any marking colour through; alpha is ignored.
 */
export function binariseMask(image: Image): Uint8Array {
  const plane = image.height * image.width;
  const colour = image.channels >= 3 ? 3 : 1;
  const mask = new Uint8Array(plane);
  for (let c = 0; c < colour; c++) {
    for (let i = 0; i < plane; i++) if (image.data[c * plane + i] > 127.5 / 255) mask[i] = 1;
  }
  return mask;
}

/** A 0/1 mask as a one-channel image (0 or 1), e.g. to write it as a PNG. */
export function maskToImage(mask: Uint8Array, height: number, width: number): Image {
  return { channels: 1, height, width, data: Float32Array.from(mask) };
}
