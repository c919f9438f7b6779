/**
 * Mean and spread of one figure over repeated seeds. The spread is the sample standard deviation,
 * std = sqrt(sum (x_i - mean)^2 / (n - 1)); a single seed has no spread and reports std 0.
 */

export interface SeedSpread {
  mean: number;
  std: number;
  seeds: number;
}

export function seedSpread(values: number[], figure = "figure"): SeedSpread {
  if (values.length === 0) throw new Error(`${figure} has no seeds, expected at least one value`);
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) throw new Error(`${figure} of seed ${i} is ${v}, expected a finite number`);
  });
  const n = values.length;
  const mean = values.reduce((sum, v) => sum + v, 0) / n;
  const squares = values.reduce((sum, v) => sum + (v - mean) ** 2, 0);
  return { mean, std: n > 1 ? Math.sqrt(squares / (n - 1)) : 0, seeds: n };
}
