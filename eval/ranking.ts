/**
 * Table 9 of the paper: for every metric the configurations are ranked, and each configuration's row
 * counts how often it came 1st, 2nd, ... over the metrics. Ties use competition ranking ("1224"):
 * equal values share the best of their places and the next place is skipped. This reproduces the
 * paper's Table 9 for Texture 2 and Screw from the figures printed in Tables 7 and 8.
 */

export interface MetricColumn {
  name: string;
  better: "higher" | "lower";
  /** One value per configuration, in the order of the configuration list. */
  values: number[];
}

export interface Ranking {
  /** places[m][c]: the place (1 = best) of configuration c on metric m. */
  places: number[][];
  /** counts[c][k]: on how many metrics configuration c took place k + 1. */
  counts: number[][];
}

export function rankConfigurations(configurations: string[], metrics: MetricColumn[]): Ranking {
  const places = metrics.map(({ name, better, values }) => {
    if (values.length !== configurations.length) {
      throw new Error(
        `${name} has ${values.length} values, expected one per configuration (${configurations.length})`,
      );
    }
    values.forEach((v, c) => {
      if (!Number.isFinite(v)) {
        throw new Error(`${name} of ${configurations[c]} is ${v}, expected a finite number`);
      }
    });
    const beats = better === "higher" ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
    return values.map((v) => 1 + values.filter((other) => beats(other, v)).length);
  });
  const counts = configurations.map((_, c) => {
    const row = new Array<number>(configurations.length).fill(0);
    for (const metricPlaces of places) row[metricPlaces[c] - 1]++;
    return row;
  });
  return { places, counts };
}
