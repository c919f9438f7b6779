/**
 * Ascending sort of float32 values in O(n): an LSD radix sort over their bit patterns, three passes
 * of 11 bits. Flipping the sign bit of non-negative floats and all bits of negative ones maps IEEE-754
 * order onto unsigned integer order. About 5x faster than `Float32Array.prototype.sort` at 50 million
 * values (bench/metrics_bench.ts), and it can carry a payload, which a typed-array sort cannot.
 */

const BITS = 11, BUCKETS = 1 << BITS, PASSES = 3;

/** Sorts `values` in place, ascending (NaN not allowed); permutes `payload` the same way when given. */
export function radixSort(values: Float32Array, payload?: Uint32Array): void {
  const n = values.length;
  let keys = new Uint32Array(n), spareKeys = new Uint32Array(n);
  let items: Uint32Array | undefined = payload;
  let spareItems: Uint32Array | undefined = payload && new Uint32Array(n);
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const counts = new Uint32Array(PASSES * BUCKETS);
  for (let i = 0; i < n; i++) {
    const key = bits[i] & 0x80000000 ? ~bits[i] >>> 0 : (bits[i] | 0x80000000) >>> 0;
    keys[i] = key;
    for (let p = 0; p < PASSES; p++) counts[p * BUCKETS + ((key >>> (p * BITS)) & (BUCKETS - 1))]++;
  }
  for (let p = 0; p < PASSES; p++) {
    const offsets = counts.subarray(p * BUCKETS, (p + 1) * BUCKETS);
    let start = 0; // exclusive prefix sum: where each bucket begins
    for (let b = 0; b < BUCKETS; b++) {
      const count = offsets[b];
      offsets[b] = start;
      start += count;
    }
    for (let i = 0; i < n; i++) {
      const at = offsets[(keys[i] >>> (p * BITS)) & (BUCKETS - 1)]++;
      spareKeys[at] = keys[i];
      if (items && spareItems) spareItems[at] = items[i];
    }
    [keys, spareKeys] = [spareKeys, keys];
    [items, spareItems] = [spareItems, items];
  }
  for (let i = 0; i < n; i++) bits[i] = keys[i] & 0x80000000 ? keys[i] & 0x7fffffff : ~keys[i] >>> 0;
  if (payload && items !== payload) payload.set(items!);
}
