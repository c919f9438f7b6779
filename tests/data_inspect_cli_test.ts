import assert from "node:assert/strict";
import { join } from "node:path";
import { createImage } from "../data/image.ts";
import { encodePng } from "../data/image_file.ts";

const LEATHER = new URL("./fixtures/mvtec-leather", import.meta.url).pathname;
const CLI = new URL("../cli/inspect_data.ts", import.meta.url).pathname;

async function inspect(dir: string) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", CLI, dir] })
    .output();
  const decoder = new TextDecoder();
  return { code, out: decoder.decode(stdout), err: decoder.decode(stderr) };
}

Deno.test("inspect-data prints a summary of a usable folder and exits 0", async () => {
  const { code, out, err } = await inspect(LEATHER);
  assert.equal(code, 0, err);
  assert.match(out, /train\/good\s+1 images/);
  assert.match(out, /test\/glue\s+1 images, mask coverage 0\.78%/);
  assert.match(out, /sizes: 1024x1024 \(3 images\)/);
  assert.match(out, /channels: RGB \(3\)/);
});

Deno.test("inspect-data prints every problem, one per line, and exits 1", async () => {
  // A folder that holds two class folders instead of being one.
  const parent = await Deno.makeTempDir({ prefix: "classes-" });
  for (const name of ["bottle", "cable"]) {
    for (const path of ["train/good/000.png", "test/good/000.png"]) {
      await Deno.mkdir(join(parent, name, path, ".."), { recursive: true });
      await Deno.writeFile(join(parent, name, path), encodePng(createImage(1, 8, 8)));
    }
  }
  const { code, err } = await inspect(parent);
  assert.equal(code, 1);
  assert.deepEqual(err.trim().split("\n"), [
    `problem: ${parent} holds 2 class folders (bottle, cable): point to one of them, e.g. ${parent}/bottle`,
    `${parent} cannot be used: 1 problem to fix.`,
  ]);
  await Deno.remove(parent, { recursive: true });
});
