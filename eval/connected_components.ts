/** 8-connected component labelling of a binary mask (as scipy.ndimage.label with a 3x3 structure). */

export interface Components {
  /** Per pixel: 0 for background, else the component number 1..sizes.length. */
  labels: Int32Array;
  /** Pixel count of each component; component c has sizes[c - 1] pixels. */
  sizes: number[];
}

/** Labels the non-zero pixels of a row-major width x height mask by flood fill over the 8 neighbours. */
export function components8(mask: Uint8Array, width: number, height: number): Components {
  const labels = new Int32Array(width * height);
  const sizes: number[] = [];
  const stack = new Int32Array(width * height);
  for (let seed = 0; seed < labels.length; seed++) {
    if (mask[seed] === 0 || labels[seed] !== 0) continue;
    const component = sizes.length + 1;
    let size = 0, top = 0;
    stack[top++] = seed;
    labels[seed] = component;
    while (top > 0) {
      const i = stack[--top];
      size++;
      const x = i % width, y = (i - x) / width;
      for (let ny = Math.max(y - 1, 0); ny <= Math.min(y + 1, height - 1); ny++) {
        for (let nx = Math.max(x - 1, 0); nx <= Math.min(x + 1, width - 1); nx++) {
          const n = ny * width + nx;
          if (mask[n] !== 0 && labels[n] === 0) {
            labels[n] = component;
            stack[top++] = n;
          }
        }
      }
    }
    sizes.push(size);
  }
  return { labels, sizes };
}
