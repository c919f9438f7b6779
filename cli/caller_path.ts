/**
 * Paths typed by the user, resolved against the folder they were typed in. `deno task` runs every task in
 * the project root and passes the caller's folder as INIT_CWD, so without this `deno task inspect-data
 * screw` run from ~/data would look for the project's own screw/. INIT_CWD counts only when the process
 * runs in the project root: a direct `deno run` elsewhere that merely inherited the variable uses its own
 * working directory.
 */
import { isAbsolute, resolve } from "node:path";

const PROJECT_ROOT = resolve(new URL("..", import.meta.url).pathname);

/** The folder the user ran the command in. */
export function callerDirectory(): string {
  const initial = Deno.env.get("INIT_CWD");
  return initial && resolve(Deno.cwd()) === PROJECT_ROOT ? initial : Deno.cwd();
}

/** `path` as an absolute path: a relative one taken from the caller's folder, an absolute one as typed. */
export function callerPath(path: string): string {
  return isAbsolute(path) ? path : resolve(callerDirectory(), path);
}
