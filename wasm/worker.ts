/**
 * A worker thread of the WebAssembly backend: it instantiates the kernel module over the shared memory,
 * then waits for jobs in the control block (see `runtime.ts`) and takes chunks until none are left.
 */
import { parentPort, workerData } from "node:worker_threads";
import { CONTROL, MATH_IMPORTS, runChunks } from "./runtime.ts";

const { module, memory, names } = workerData as {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  names: string[];
};
const exports = new WebAssembly.Instance(module, { env: { memory }, math: MATH_IMPORTS }).exports as Record<
  string,
  (...args: number[]) => number
>;
const { SEQ, QUIT, FN, NARGS, COUNT, NEXT, DONE, ERROR, ARGS_AT, MAX_ARGS } = CONTROL;
const control = new Int32Array(memory.buffer, 0, 16);
// Read the job counter before saying ready, so a job posted right after is not missed.
let seen = Atomics.load(control, SEQ);
parentPort!.postMessage("ready");
for (;;) {
  Atomics.wait(control, SEQ, seen);
  seen = Atomics.load(control, SEQ);
  if (Atomics.load(control, QUIT)) break;
  try {
    const args = Array.from(new Float64Array(memory.buffer, ARGS_AT, MAX_ARGS).subarray(0, control[NARGS]));
    runChunks(control, exports[names[control[FN]]], args);
  } catch (e) {
    console.error(`wasm worker: ${(e as Error).stack ?? e}`);
    Atomics.store(control, ERROR, 1);
    Atomics.store(control, NEXT, control[COUNT]); // no thread takes another chunk
  }
  Atomics.add(control, DONE, 1);
  Atomics.notify(control, DONE);
}
