import assert from "node:assert/strict";
import { Random } from "../engine/random.ts";
import { radixSort } from "../eval/radix_sort.ts";

/** Values across every range the bit mapping must order: signs, zeros, subnormals, infinities, ties. */
function awkwardValues(random: Random, n: number): Float32Array {
  const special = [0, -0, Infinity, -Infinity, 1e-45, -1e-45, 3.4e38, -3.4e38, 1, -1];
  return Float32Array.from(
    { length: n },
    (_, i) => i % 7 === 0 ? special[random.int(special.length)] : random.normal() * 10 ** random.int(8),
  );
}

Deno.test("radix sort orders float32 values as Float32Array.prototype.sort does", () => {
  const values = awkwardValues(new Random(1), 20000);
  const expected = values.slice().sort();
  radixSort(values);
  assert.ok(values.every((v, i) => Object.is(v, expected[i])), "order differs from the typed-array sort");
});

Deno.test("radix sort permutes the payload with the values", () => {
  const original = awkwardValues(new Random(2), 5000);
  const values = original.slice();
  const order = new Uint32Array(values.length).map((_, i) => i);
  radixSort(values, order);
  assert.deepEqual(
    Array.from(order).sort((a, b) => a - b),
    Array.from({ length: values.length }, (_, i) => i),
  );
  assert.ok(values.every((v, i) => Object.is(original[order[i]], v)), "payload does not follow its value");
  for (let i = 1; i < values.length; i++) assert.ok(values[i - 1] <= values[i]);
});
