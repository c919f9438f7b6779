/**
 * A metric that has no value for the given data, e.g. ROC AUC with no defect pixel. It is thrown rather
 * than returned as NaN so that no table can print NaN; `evaluateDetection` turns it into a reason string.
 */
export class UndefinedMetricError extends Error {
  override name = "UndefinedMetricError";
}
