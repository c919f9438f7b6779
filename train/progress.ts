/**
 * A one-line progress bar on stderr: epoch, step, loss, images/s and the time left. On a terminal the line
 * is redrawn in place; otherwise (a log file, CI) each update is its own line.
 */
export interface ProgressState {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  imagesPerSecond: number;
  etaSeconds: number;
}

const BAR_WIDTH = 24;
const encoder = new TextEncoder();

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(s % 60).padStart(2, "0")}s`;
}

export function formatProgress(p: ProgressState): string {
  const filled = Math.round((BAR_WIDTH * p.step) / p.steps);
  const bar = "=".repeat(filled) + " ".repeat(BAR_WIDTH - filled);
  return `epoch ${p.epoch}/${p.epochs} [${bar}] step ${p.step}/${p.steps} loss ${p.loss.toPrecision(5)} ` +
    `${p.imagesPerSecond.toFixed(1)} img/s ETA ${formatDuration(p.etaSeconds)}`;
}

export class ProgressBar {
  readonly #interactive = Deno.stderr.isTerminal();

  update(p: ProgressState): void {
    const line = formatProgress(p);
    Deno.stderr.writeSync(encoder.encode(this.#interactive ? `\r${line}\x1b[K` : `${line}\n`));
  }

  /** Ends the current line with a summary (the epoch's losses). */
  message(text: string): void {
    Deno.stderr.writeSync(encoder.encode(this.#interactive ? `\r${text}\x1b[K\n` : `${text}\n`));
  }
}
