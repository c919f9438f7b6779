/**
 * The paper's findings, each checked against this run: held, did not hold, or could not be judged,
 * with the figures that decided it.
 */
import type {
  Configuration,
  ConfigurationResult,
  Fig4Result,
  PretrainResult,
} from "../experiments/results.ts";
import { spreadText, summarise } from "./tables.ts";

export interface Claim {
  section: string;
  claim: string;
  held: boolean | null;
  evidence: string;
}

type Pick = (r: ConfigurationResult) => number | null;

const fmt = (v: number) => (Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(4));

function meanOf(
  results: ConfigurationResult[],
  className: string,
  config: Configuration,
  pick: Pick,
): number | null {
  return summarise(results.filter((r) => r.className === className && r.configuration === config).map(pick))
    .mean;
}

/** "a beats b" on one class and figure; lower or higher is better. */
function compare(
  section: string,
  claim: string,
  results: ConfigurationResult[],
  className: string,
  [a, b]: [Configuration, Configuration],
  pick: Pick,
  better: "lower" | "higher",
  expectWin = true,
): Claim {
  const va = meanOf(results, className, a, pick), vb = meanOf(results, className, b, pick);
  if (va === null || vb === null) return { section, claim, held: null, evidence: "not measured in this run" };
  // Differences below 1e-4 of the values are ties: no configuration beats another by rounding noise.
  const tie = Math.abs(va - vb) <= 1e-4 * Math.max(Math.abs(va), Math.abs(vb));
  const wins = !tie && (better === "lower" ? va < vb : va > vb);
  return {
    section,
    claim,
    held: wins === expectWin,
    evidence: `${fmt(va)} vs ${fmt(vb)}${tie ? " (a tie)" : ""}`,
  };
}

/**
 * The plain AE's mean SSIM (held-out defect-free patches, content only) below which it still reproduces
 * little more than the average image, so that a class's comparisons say little.
 */
export const SSIM_FLOOR = 0.5;

/** One sentence on whether the plain AE trained past the floor on every class, naming those it did not. */
export function trainingCheck(classes: string[], results: ConfigurationResult[]): string {
  const ssims = classes.map((c) => ({ c, ssim: meanOf(results, c, "ae", (r) => r.ssim) }));
  const measured = ssims.filter((s): s is { c: string; ssim: number } => s.ssim !== null);
  if (measured.length === 0) return "Training check: the plain AE was not trained in this run.";
  const list = measured.map((s) => `${s.c} ${s.ssim.toFixed(2)}`).join(", ");
  const below = measured.filter((s) => s.ssim < SSIM_FLOOR).map((s) => s.c);
  return `Training check: the plain AE's mean SSIM on held-out defect-free patches is ${list}. ` +
    (below.length
      ? `Below ${SSIM_FLOOR} (${
        below.join(", ")
      }) it reproduces little more than the average image, so the ` +
        `comparisons on ${below.length === 1 ? "that class" : "those classes"} say little: train longer.`
      : `Every class is above ${SSIM_FLOOR}.`);
}

export function checkClaims(
  classes: string[],
  results: ConfigurationResult[],
  pretrain: PretrainResult[],
  fig4: Fig4Result | null,
): Claim[] {
  const claims: Claim[] = [];
  if (fig4) {
    const exact = fig4.samplers.find((s) => s.sampler === "exact"),
      naive = fig4.samplers.find((s) => s.sampler === "naive");
    if (exact && naive) {
      claims.push({
        section: "Fig. 4",
        claim:
          `the TensorFlow STN sampler leaves a larger ${fig4.angle}° round-trip error than an exact sampler`,
        held: naive.meanError255 > exact.meanError255,
        evidence: `mean |error| ${exact.meanError255.toFixed(2)} (exact) vs ${
          naive.meanError255.toFixed(2)
        } (naive) grey levels`,
      });
    }
  }
  for (const c of classes) {
    const rs = pretrain.filter((p) => p.className === c);
    if (rs.length) {
      const before = summarise(rs.map((r) => r.before.meanResultantLength)).mean!;
      const after = summarise(rs.map((r) => r.after.meanResultantLength)).mean!;
      claims.push({
        section: "Section 6",
        claim: `pre-training normalises the orientation of ${c} (the orientations concentrate)`,
        held: after - before >= 0.05, // a resultant length that rises by less is noise, not normalisation
        evidence: `resultant length ${before.toFixed(2)} before, ${
          after.toFixed(2)
        } after (circular std in degrees: ${
          rs.map((r) => `${spreadText(r.before)} → ${spreadText(r.after)}`).join(", ")
        })`,
      });
    }
  }
  const mse: Pick = (r) => r.mse255, ssim: Pick = (r) => r.ssim;
  const roc: Pick = (r) => r.detection.ssim.rocAuc, pr: Pick = (r) => r.detection.ssim.averagePrecision;
  for (const c of classes) {
    const s = "Tables 3-5";
    claims.push(
      compare(
        s,
        `pre-trained frozen STN has lower MSE than the plain AE on ${c}`,
        results,
        c,
        ["stn-frozen", "ae"],
        mse,
        "lower",
      ),
    );
    claims.push(
      compare(
        s,
        `pre-trained frozen STN has higher SSIM than the plain AE on ${c}`,
        results,
        c,
        ["stn-frozen", "ae"],
        ssim,
        "higher",
      ),
    );
    claims.push(
      compare(
        s,
        `a randomly initialised STN does not improve the MSE of the plain AE on ${c}`,
        results,
        c,
        ["stn-random", "ae"],
        mse,
        "lower",
        false,
      ),
    );
  }
  const finetuneWorse = classes.map((c) => {
    const f = meanOf(results, c, "stn-finetuned", mse), z = meanOf(results, c, "stn-frozen", mse);
    return f === null || z === null ? null : f > z;
  });
  if (finetuneWorse.every((v) => v !== null) && classes.length) {
    const n = finetuneWorse.filter(Boolean).length;
    claims.push({
      section: "Section 8.1",
      claim:
        "fine-tuning the pre-trained STN gives lower quality (MSE) than freezing it in most classes (paper: 2 of 3)",
      held: n > classes.length / 2,
      evidence: `fine-tuned worse in ${n} of ${classes.length} classes`,
    });
  }
  for (const c of classes) {
    const s = "Tables 6-8";
    claims.push(
      compare(
        s,
        `frozen STN has a higher SSIM-residual ROC AUC than the plain AE on ${c}`,
        results,
        c,
        ["stn-frozen", "ae"],
        roc,
        "higher",
      ),
    );
    claims.push(
      compare(
        s,
        `frozen STN has a higher SSIM-residual PR AUC than the plain AE on ${c}`,
        results,
        c,
        ["stn-frozen", "ae"],
        pr,
        "higher",
      ),
    );
    const ssimRoc = meanOf(results, c, "ae", roc),
      l2Roc = meanOf(results, c, "ae", (r) => r.detection.l2.rocAuc);
    claims.push({
      section: "Section 8.2",
      claim: `the SSIM residual detects defects better than the L2 residual (plain AE, ROC AUC) on ${c}`,
      held: ssimRoc === null || l2Roc === null ? null : ssimRoc > l2Roc,
      evidence: ssimRoc === null || l2Roc === null
        ? "not measured in this run"
        : `${fmt(ssimRoc)} vs ${fmt(l2Roc)}`,
    });
  }
  return claims;
}

export function claimMark(held: boolean | null): string {
  return held === null ? "n/a" : held ? "yes" : "no";
}
