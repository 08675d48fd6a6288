#!/usr/bin/env bash
# Runs the node --test files of the given suites with whatever `node` is first on PATH, the TAP
# output in LOG, and ends with "N passed, M failed". Used by scripts/test.sh (Node 20: unit,
# integration, e2e) and scripts/node-versions.sh (Node 22 and 24: unit, and a share each of the
# integration files).
#
#   bash scripts/node-tests.sh LOG unit integration e2e
#   bash scripts/node-tests.sh LOG unit 'integration%1/2'   # every unit file, half the integration files
#
# Test files run side by side, ZMQCHAT_TEST_CONCURRENCY at a time (default 3), each in its own
# process with its own temporary directories, runtime directory (test/helpers/isolate.ts) and
# OS-assigned ports. A file that measures the machine (a ratio under a flood) says so with the
# line `// npm test: runs alone` and runs afterwards, by itself.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$1
shift
concurrency=${ZMQCHAT_TEST_CONCURRENCY:-3}

shopt -s nullglob
together=()
alone=()
for arg in "$@"; do
  # SUITE%K/N: the K-th of N shares of the suite's files (K from 0), the files taken in name order
  # and dealt round-robin from an offset of ZMQCHAT_TEST_SHARD_SEED (an integer, default 0). The
  # shares of one seed cover every file exactly once.
  suite=${arg%%%*}
  share=
  [ "$suite" = "$arg" ] || share=${arg#*%}
  i=0
  for f in test/"$suite"/*.test.ts test/"$suite"/*.test.tsx; do
    if [ -n "$share" ]; then
      k=${share%/*}
      n=${share#*/}
      pick=$(((i + ${ZMQCHAT_TEST_SHARD_SEED:-0}) % n))
      i=$((i + 1))
      [ "$pick" -eq "$k" ] || continue
    fi
    if grep -qx '// npm test: runs alone' "$f"; then alone+=("$f"); else together+=("$f"); fi
  done
done

# ZMQCHAT_TEST_LIST=1: print the files that would run, one per line, and run nothing.
if [ "${ZMQCHAT_TEST_LIST:-}" = 1 ]; then
  printf '%s\n' ${together[@]+"${together[@]}"} ${alone[@]+"${alone[@]}"}
  exit 0
fi

# The per-test timeout only catches a hang: 20 min, beyond the 15 min package.test.ts allows its
# `npm install -g` (which compiles better-sqlite3, slow on a busy machine).
run() {
  node --import tsx --import ./test/helpers/isolate.ts --test --test-reporter=tap --test-timeout=1200000 "$@"
}

echo "# node $(node --version) ($(command -v node))" | tee "$log"
status=0
if [ ${#together[@]} -gt 0 ]; then
  echo "# ${#together[@]} files, $concurrency at a time" | tee -a "$log"
  run --test-concurrency="$concurrency" "${together[@]}" 2>&1 | tee -a "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
if [ ${#alone[@]} -gt 0 ]; then
  echo "# ${#alone[@]} files that measure the machine, one at a time: ${alone[*]}" | tee -a "$log"
  run --test-concurrency=1 "${alone[@]}" 2>&1 | tee -a "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

# The runs' summaries added up; a cancelled test (its file hung or crashed) counts as failed.
sum() { grep -E "^# $1 [0-9]+$" "$log" | awk '{s += $3} END {print s + 0}'; }
passed=$(sum pass)
failed=$(($(sum fail) + $(sum cancelled)))
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
skipped=$(sum skipped)
# Skipped tests count as neither passed nor failed; they are named so that nobody mistakes them.
if [ "$skipped" -gt 0 ]; then
  echo "# ${skipped} skipped (counted as neither passed nor failed):"
  grep -E "^ *ok [0-9]+ - .* # SKIP" "$log" | sed -E 's/^ *ok [0-9]+ - /#   /'
fi
echo "${passed} passed, ${failed} failed"
exit $status
