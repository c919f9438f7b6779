#!/usr/bin/env bash
# A newcomer's first run. Clones the current commit into an empty temporary folder with nothing beside
# it, then runs the README's test command exactly as printed there, and `reproduce --preset smoke`,
# with none of DENO_WEBGPU_BACKEND, XDG_RUNTIME_DIR and CI exported. Prints the wall time of each.
# The clone is removed afterwards, unless a command failed.
#
# Usage: scripts/fresh-clone-check.sh
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
commit=$(git -C "$root" rev-parse HEAD)
if [ -n "$(git -C "$root" status --porcelain)" ]; then
  echo "fresh-clone-check: note: uncommitted changes in $root are not part of the check"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/fresh-clone.XXXXXX")
git clone --quiet "$root" "$work/repo"
git -C "$work/repo" checkout --quiet --detach "$commit"
cd "$work/repo"

# The commands of the README's "Two commands" block, as printed, comments dropped.
readme_command() { # readme_command TASK
  sed -n "s/^\(npx -y deno@[^ ]* task $1\)\([[:space:]].*\)\{0,1\}$/\1/p" README.md | head -n 1
}
test_command=$(readme_command test)
reproduce_command="$(readme_command reproduce) --preset smoke"
if [ -z "$test_command" ] || [ "$reproduce_command" = " --preset smoke" ]; then
  echo "fresh-clone-check: README.md no longer prints 'npx -y deno@... task test' and '... task reproduce'"
  exit 1
fi

echo "fresh-clone-check: commit $(git rev-parse --short HEAD) cloned into $work/repo; beside it: $(ls -A "$work")"
failed=0
summary=()
run() { # run NAME COMMAND: the command in the clone, nothing exported, its output shown and kept
  local name=$1 command=$2 start end status
  echo "fresh-clone-check: running \`$command\`"
  start=$(date +%s)
  set +e
  env -u DENO_WEBGPU_BACKEND -u XDG_RUNTIME_DIR -u CI bash -c "$command" 2>&1 | tee "$work/$name.log"
  status=${PIPESTATUS[0]}
  set -e
  end=$(date +%s)
  local took=$((end - start))
  local verdict="PASS"
  if [ "$status" -ne 0 ]; then
    verdict="FAIL (exit $status)"
    failed=1
  fi
  summary+=("\`$command\`: $verdict in $((took / 60))m $((took % 60))s")
}
run test "$test_command"
run reproduce "$reproduce_command"

echo
echo "fresh-clone-check: commit $(git rev-parse --short HEAD), $(nproc) cores, $(uname -sr)"
# The adapter the WebGPU backend chose, and deno test's closing line, without colour codes.
sed 's/\x1b\[[0-9;]*m//g' "$work/test.log" | grep -m 1 '^webgpu: adapter' | sed 's/^/fresh-clone-check: /' || true
sed 's/\x1b\[[0-9;]*m//g' "$work/test.log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1 |
  sed 's/^/fresh-clone-check: tests: /' || true
for line in "${summary[@]}"; do echo "fresh-clone-check: $line"; done
if [ "$failed" -ne 0 ]; then
  echo "fresh-clone-check: FAIL; the clone and the logs (test.log, reproduce.log) are kept in $work"
  exit 1
fi
rm -rf "$work"
echo "fresh-clone-check: PASS"
