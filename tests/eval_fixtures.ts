/** Loads the evaluation fixtures written by scripts/make_eval_fixtures.py (scikit-learn, scikit-image, scipy). */
import { binariseMask } from "../data/image.ts";
import { readImageFile } from "../data/image_file.ts";
import type { DefectMap } from "../eval/defect_maps.ts";

export interface ScoreCase {
  name: string;
  scores: number[];
  labels: number[];
  rocAuc: number;
  averagePrecision: number;
}

interface MapEntry {
  width: number;
  height: number;
  residual: number[] | null;
  groundTruth: number[] | null;
  content: number[] | null;
  /** Set for a real mask, which the test reads from fixtures/mvtec-leather/ instead of the JSON. */
  mask?: string;
}

export interface MapCase {
  name: string;
  maps: MapEntry[];
  pixelRocAuc: number;
  averagePrecision: number;
  imageRocAuc: number | null;
  aupro: number;
  regions: number;
}

export interface SsimCase {
  shape: [number, number, number, number];
  x: number[];
  y: number[];
  /** skimage's SSIM map of each channel, cropped by 5 px: [N, C, H - 10, W - 10]. */
  validSsim: number[];
  /** skimage's mean SSIM, averaged over channels. */
  meanSsim: number;
}

const LEATHER = new URL("./fixtures/mvtec-leather/", import.meta.url);

async function readFixture<T>(name: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(new URL(`./fixtures/${name}`, import.meta.url)));
}

export const readScoreCases = () => readFixture<ScoreCase[]>("eval_scores.json");
export const readMapCases = () => readFixture<MapCase[]>("eval_maps.json");
export const readSsimCase = () => readFixture<SsimCase>("eval_ssim.json");

/**
 * The fixture's maps as DefectMaps. A real mask is read from the vendored class and its residual rebuilt
 * exactly as the script made it: ((7x + 13y) mod 101) / 100 + 0.3 * defect, rounded to float32.
 */
export async function defectMapsOf(fixture: MapCase): Promise<DefectMap[]> {
  return await Promise.all(fixture.maps.map(async (entry, k) => {
    const { width, height } = entry;
    if (entry.mask === undefined) {
      return {
        name: `${fixture.name} #${k}`,
        width,
        height,
        residual: Float32Array.from(entry.residual!),
        groundTruth: Uint8Array.from(entry.groundTruth!),
        content: Uint8Array.from(entry.content!),
      };
    }
    const path = new URL(entry.mask, LEATHER).pathname;
    const groundTruth = binariseMask(await readImageFile(path, 1));
    const residual = Float32Array.from(
      groundTruth,
      (g, i) => ((7 * (i % width) + 13 * Math.floor(i / width)) % 101) / 100 + 0.3 * g,
    );
    return {
      name: entry.mask,
      width,
      height,
      residual,
      groundTruth,
      content: new Uint8Array(width * height).fill(1),
    };
  }));
}
