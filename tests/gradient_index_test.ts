import assert from "node:assert/strict";
import { gradientIndex, INDEX_PATH } from "../scripts/gradient_index.ts";

Deno.test("docs/gradients.md matches the op files' header comments (else: deno task gradients)", () => {
  assert.equal(
    Deno.readTextFileSync(INDEX_PATH),
    gradientIndex(),
    "docs/gradients.md is stale: run deno task gradients",
  );
});
