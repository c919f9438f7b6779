/** What data preparation (prepare.ts) makes and the patch cache (patch_cache.ts) stores. */
/** N patches of size x size with `channels` channels, channels-first, patch after patch. */
export interface PatchSet {
  n: number;
  channels: 1 | 3;
  size: number;
  /** N * channels * size * size, values in [0, 1]. */
  images: Float32Array;
  /** N * size * size: 1 where real (non-padding) content lies after padding and rotation. */
  content: Uint8Array;
  /** N: the rotation applied, in degrees, in the convention of transform.ts's `rotate` (0 for test patches). */
  angles: Float32Array;
  /** N * size * size: the defect mask (test sets only). */
  defects?: Uint8Array;
  /** N: index into ClassSet.test of the image each patch came from (test sets only). */
  imageIndex?: Int32Array;
}
