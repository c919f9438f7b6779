import assert from "node:assert/strict";

const SHARED = new URL("../../shared/data/", import.meta.url).pathname;
const CLI = new URL("../cli/inspect_data.ts", import.meta.url).pathname;

async function inspect(dir: string) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", CLI, dir] })
    .output();
  const decoder = new TextDecoder();
  return { code, out: decoder.decode(stdout), err: decoder.decode(stderr) };
}

Deno.test("inspect-data prints a summary of a usable folder and exits 0", async () => {
  const { code, out, err } = await inspect(`${SHARED}magnetic-tile`);
  assert.equal(code, 0, err);
  assert.match(out, /train\/good\s+200 images/);
  assert.match(out, /test\/crack\s+8 images, mask coverage 0\.53%/);
  assert.match(out, /channels: gray \(260\)/);
});

Deno.test("inspect-data prints every problem, one per line, and exits 1", async () => {
  const { code, err } = await inspect(`${SHARED}`);
  assert.equal(code, 1);
  assert.deepEqual(err.trim().split("\n"), [
    `problem: ${SHARED} holds 2 class folders (magnetic-tile, mvtec-leather-sample): point to one of them, ` +
    `e.g. ${SHARED}magnetic-tile`,
    `${SHARED} cannot be used: 1 problem to fix.`,
  ]);
});
