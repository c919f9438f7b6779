/**
 * Pixel metrics over 50 million pixels: 200 residual maps of 500x500, all content. The maps are built
 * once, outside the timed code: a defect-free residual |N(0, 0.05)| everywhere, and in every second
 * map one to three discs (radius 4-40 px) of ground truth whose residual is raised by U(0, 0.3), so
 * classes overlap as in a real evaluation. Each bench times the whole path from the maps: gathering
 * content pixels, splitting and sorting, then the sweep.
 *   deno bench -A bench/metrics_bench.ts
 */
import { aupro } from "../eval/aupro.ts";
import { averagePrecision, rocAuc } from "../eval/binary_metrics.ts";
import { contentPixels, type DefectMap } from "../eval/defect_maps.ts";
import { radixSort } from "../eval/radix_sort.ts";
import { splitByClass } from "../eval/threshold_sweep.ts";
import { Random } from "../engine/random.ts";

const MAPS = 200, SIDE = 500;

function syntheticMaps(random: Random): DefectMap[] {
  const content = new Uint8Array(SIDE * SIDE).fill(1);
  return Array.from({ length: MAPS }, (_, k) => {
    const residual = Float32Array.from({ length: SIDE * SIDE }, () => Math.abs(0.05 * random.normal()));
    const groundTruth = new Uint8Array(SIDE * SIDE);
    const discs = k % 2 === 0 ? 0 : 1 + Math.floor(3 * random.next());
    for (let d = 0; d < discs; d++) {
      const cx = random.uniform(0, SIDE), cy = random.uniform(0, SIDE), r = random.uniform(4, 40);
      for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(SIDE, cy + r); y++) {
        for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(SIDE, cx + r); x++) {
          if ((x - cx) ** 2 + (y - cy) ** 2 > r * r || groundTruth[y * SIDE + x]) continue;
          groundTruth[y * SIDE + x] = 1;
          residual[y * SIDE + x] += random.uniform(0, 0.3);
        }
      }
    }
    return { name: `synthetic ${k}`, width: SIDE, height: SIDE, residual, groundTruth, content };
  });
}

const maps = syntheticMaps(new Random(5));

function pixelScores() {
  const { scores, labels } = contentPixels(maps);
  return splitByClass(scores, labels);
}

Deno.bench({ name: "pixel ROC AUC, 50M pixels", n: 3, warmup: 1, fn: () => void rocAuc(pixelScores()) });
Deno.bench({
  name: "average precision, 50M pixels",
  n: 3,
  warmup: 1,
  fn: () => void averagePrecision(pixelScores()),
});
Deno.bench({ name: "AUPRO to FPR 0.3, 50M pixels", n: 3, warmup: 1, fn: () => void aupro(maps) });

// Why the metrics use a radix sort: the same 50M residuals sorted both ways (each run sorts a fresh copy).
const residuals = contentPixels(maps).scores;
Deno.bench({
  name: "radix sort, 50M float32",
  group: "sort",
  baseline: true,
  n: 3,
  warmup: 1,
  fn: () => radixSort(residuals.slice()),
});
Deno.bench({
  name: "Float32Array.prototype.sort, 50M float32",
  group: "sort",
  n: 3,
  warmup: 1,
  fn: () => void residuals.slice().sort(),
});
