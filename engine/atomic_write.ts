/**
 * Files written whole or not at all: through a temporary file next to the target and a rename, which is
 * atomic on one file system, so a reader (or a run resumed after a kill) sees the old file or the new one,
 * never half of one. It sits in the engine, the lowest layer, so every layer that writes results can use it.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const partial = `${path}.partial`;
  if (typeof data === "string") await Deno.writeTextFile(partial, data);
  else await Deno.writeFile(partial, data);
  await Deno.rename(partial, path);
}
