import assert from "node:assert/strict";
import { deviceError, gradcheck, GRADCHECK_TOL } from "./harness.ts";
import { OP_CASES } from "./cases/index.ts";
import { TEST_DEVICES } from "./devices.ts";
import { cpu } from "../engine/cpu.ts";
import { Random } from "../engine/random.ts";

for (const c of OP_CASES) {
  Deno.test(`gradcheck float64: ${c.name}`, () => {
    const err = gradcheck(c);
    assert.ok(
      err <= GRADCHECK_TOL,
      `${c.name}: max gradient error ${err.toExponential(2)} > ${GRADCHECK_TOL}`,
    );
  });
}

for (const device of TEST_DEVICES) {
  for (const c of OP_CASES) {
    Deno.test(`${device.name} float32 vs reference: ${c.name}`, async () => {
      const err = await deviceError(c, await device.get());
      const worst = Math.max(err.output, ...err.grads);
      assert.ok(
        worst <= c.tol,
        `${c.name} on ${device.name}: output ${err.output.toExponential(2)}, grads [${
          err.grads.map((e) => e.toExponential(2))
        }] > ${c.tol}`,
      );
    });
  }
}

for (const device of TEST_DEVICES) {
  Deno.test(`${device.name}: maxPool2d keeps the first maximum on ties, skips NaN and pools -Infinity, as the reference`, async () => {
    // Values of three levels, so most windows tie; some NaN, one all -Infinity window, overlapping windows.
    const shape = [2, 3, 9, 10], rng = new Random(10);
    const values = Float32Array.from({ length: 540 }, () => {
      const r = rng.next();
      return r < 0.05 ? NaN : Math.floor(r * 3);
    });
    values.fill(-Infinity, 0, 3).fill(-Infinity, 10, 13).fill(-Infinity, 20, 23);
    const single = await device.get();
    for (const [kernel, stride] of [[2, 2], [3, 2], [3, 1]]) {
      const got = single.maxPool2d(single.fromData(values, shape), kernel, stride);
      const want = cpu.maxPool2d(cpu.fromData(values, shape), kernel, stride);
      assert.deepEqual(
        [...await got.y.data()],
        [...want.y.cpuData()],
        `y, kernel ${kernel} stride ${stride}`,
      );
      assert.deepEqual(
        [...await got.argmax.data()],
        [...want.argmax.cpuData()],
        `argmax, kernel ${kernel} stride ${stride}`,
      );
    }
  });
}
