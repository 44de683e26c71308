#!/usr/bin/env bash
# Runs the whole test suite: setup, build, type-check, lint, then vitest.
#
#   scripts/test.sh [VITEST ARGS...]      e.g. scripts/test.sh test/unit
#
# Every step runs even when an earlier one failed, so one run shows everything that
# is wrong. The last line printed is vitest's own count, taken from its JSON report:
#   N passed, N failed[, N skipped]
# The exit status is non-zero when any step failed, any test or test file failed,
# or vitest wrote no report.
set -euo pipefail

cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

bash scripts/setup.sh --no-build --test-peers

failed_steps=()
run_step() {
  local name="$1"; shift
  step "$name: $*"
  if ! "$@"; then
    failed_steps+=("$name")
    printf 'test.sh: %s FAILED\n' "$name" >&2
  fi
}

# The build is a step of its own (not part of setup.sh here) so that a compile
# error is reported like the others instead of stopping the run: tsc still emits
# dist/, which the end-to-end tests start.
run_step build npm run build
run_step typecheck npm run typecheck
run_step lint npm run lint

report=test-results/vitest.json
mkdir -p test-results
rm -f "$report"

step "vitest: npx vitest run $*"
vitest_status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || vitest_status=$?

summary=""
problems=()
if [ -s "$report" ]; then
  # Prints "passed failed skipped failedFiles success"; vitest's own numbers.
  if counts="$(node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const n = (k) => Number(r[k] ?? 0);
      console.log([n("numPassedTests"), n("numFailedTests"), n("numPendingTests") + n("numTodoTests"),
                   n("numFailedTestSuites"), r.success === true ? 1 : 0].join(" "));
    ' "$report")"; then
    read -r passed failed skipped failed_files success <<<"$counts"
    summary="$passed passed, $failed failed"
    [ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
    [ "$failed" -gt 0 ] && problems+=("$failed test(s) failed")
    # A file that fails to import, or whose hooks throw, fails without failing a test.
    [ "$failed_files" -gt 0 ] && [ "$failed" -eq 0 ] && problems+=("$failed_files test file(s) failed (see vitest's output above)")
    [ "$((passed + failed + skipped))" -eq 0 ] && problems+=("no tests ran")
    [ "$success" -eq 0 ] && [ "${#problems[@]}" -eq 0 ] && problems+=("vitest reported the run as unsuccessful")
  else
    problems+=("could not read vitest's JSON report $report")
  fi
else
  problems+=("vitest wrote no JSON report ($report); it did not run the tests")
fi
if [ "$vitest_status" -ne 0 ] && [ "${#problems[@]}" -eq 0 ]; then
  # e.g. no test files matched, or unhandled errors outside the tests.
  problems+=("vitest exited with status $vitest_status")
fi

status=0
echo >&2
if [ "${#failed_steps[@]}" -gt 0 ]; then
  printf 'test.sh: FAILED steps: %s\n' "${failed_steps[*]}" >&2
  status=1
fi
for p in "${problems[@]}"; do
  printf 'test.sh: %s\n' "$p" >&2
  status=1
done

# The count goes to stdout, after every message above, so it is the last line.
if [ -n "$summary" ]; then
  echo "$summary"
fi
exit "$status"
