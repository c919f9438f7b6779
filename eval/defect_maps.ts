/**
 * The evaluation's input: per test image, a residual map, its ground-truth defect mask and the content
 * region (the un-padded centre). Pixels outside the content region take part in no metric.
 */

/** Row-major width x height maps; in the masks non-zero means "defect" and "content". */
export interface DefectMap {
  name: string;
  width: number;
  height: number;
  residual: Float32Array;
  groundTruth: Uint8Array;
  content: Uint8Array;
}

/**
 * Per-patch DefectMaps over a batch: residuals and ground truths laid out [N, H, W] (as residual.ts
 * returns them), one H x W content mask for all. The maps are views, nothing is copied.
 */
export function defectMapsOfBatch(
  names: string[],
  residuals: Float32Array,
  groundTruths: Uint8Array,
  content: Uint8Array,
  height: number,
  width: number,
): DefectMap[] {
  const plane = height * width, expected = names.length * plane;
  if (residuals.length !== expected || groundTruths.length !== expected) {
    throw new Error(
      `residuals have ${residuals.length} values and ground truths ${groundTruths.length}, expected ` +
        `${names.length} patches of ${height}x${width} = ${expected}`,
    );
  }
  return names.map((name, k) => ({
    name,
    width,
    height,
    residual: residuals.subarray(k * plane, (k + 1) * plane),
    groundTruth: groundTruths.subarray(k * plane, (k + 1) * plane),
    content,
  }));
}

/** Throws unless every array holds width x height values and the residual is finite inside the content. */
export function checkDefectMap(map: DefectMap): void {
  const { name, width, height } = map;
  for (const part of ["residual", "groundTruth", "content"] as const) {
    const length = map[part].length;
    if (length !== width * height) {
      throw new Error(
        `${name}: ${part} has ${length} values, expected ${width}x${height} = ${width * height}`,
      );
    }
  }
  for (let i = 0; i < width * height; i++) {
    if (map.content[i] !== 0 && !Number.isFinite(map.residual[i])) {
      throw new Error(
        `${name}: residual at (x ${i % width}, y ${Math.floor(i / width)}) is ${map.residual[i]}`,
      );
    }
  }
}

/** The residual and defect label of every content pixel of every map, concatenated. */
export function contentPixels(maps: DefectMap[]): { scores: Float32Array; labels: Uint8Array } {
  let total = 0;
  for (const map of maps) {
    checkDefectMap(map);
    for (let i = 0; i < map.content.length; i++) if (map.content[i] !== 0) total++;
  }
  const scores = new Float32Array(total);
  const labels = new Uint8Array(total);
  let k = 0;
  for (const { residual, groundTruth, content } of maps) {
    for (let i = 0; i < content.length; i++) {
      if (content[i] === 0) continue;
      scores[k] = residual[i];
      labels[k++] = groundTruth[i] !== 0 ? 1 : 0;
    }
  }
  return { scores, labels };
}

/** Image-level score and label: the maximum residual over the content, defective if any content pixel is. */
export function imageScore(map: DefectMap): { score: number; defective: boolean } {
  let score = -Infinity, defective = false;
  for (let i = 0; i < map.content.length; i++) {
    if (map.content[i] === 0) continue;
    score = Math.max(score, map.residual[i]);
    defective ||= map.groundTruth[i] !== 0;
  }
  if (score === -Infinity) throw new Error(`${map.name}: content mask is empty, expected at least one pixel`);
  return { score, defective };
}
