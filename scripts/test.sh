#!/usr/bin/env bash
# The whole test suite, as the README gives it: `npm test`. Installs the system packages the
# tests need when run as root; otherwise says exactly what is missing. Never skips silently.
set -uo pipefail
cd "$(dirname "$0")/.."

mkdir -p test/artifacts
log=test/artifacts/node-test.log
failed_stages=()

stage() { printf '\n=== %s === (%s)\n' "$*" "$(date +%H:%M:%S)"; }

stage "system packages"
bash scripts/ensure-deps.sh || exit 1

stage "build and typecheck"
npm run --silent build || exit 1
# The package test's `npm install -g` and the Ansible rollout's dependency set install better-sqlite3 again:
# they unpack the binary npm install built here instead of compiling it once more each.
node scripts/seed-prebuild.cjs || echo "(each later install of better-sqlite3 compiles it)"

stage "lint (biome)"
npx --no-install biome check . || failed_stages+=("lint")

stage "Node $(bash scripts/node-versions.sh versions | sed 's/ / and /'): install from the npm registry, rebuild native modules"
bash scripts/node-versions.sh prepare || failed_stages+=("node versions: prepare")

stage "unit, integration and e2e tests on Node $(node --version | tr -d v) (node --test, ${ZMQCHAT_TEST_CONCURRENCY:-3} files at a time)"
out=test/artifacts/node-test-summary.log
bash scripts/node-tests.sh "$log" unit integration e2e | tee "$out"
node_status=${PIPESTATUS[0]}
line=$(grep -oE '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
node_pass=$(echo "${line:-0 passed, 1 failed}" | awk '{print $1}')
node_fail=$(echo "${line:-0 passed, 1 failed}" | awk '{print $3}')
[ "$node_status" -eq 0 ] || { failed_stages+=("node tests"); [ "$node_fail" -gt 0 ] || node_fail=1; }
summary="Node $(node --version | tr -d v): $node_pass passed $node_fail failed"

# The Ansible stage (a rollout on this machine: mostly waiting on ansible, apt and services) runs
# beside the suites of the other Node releases, which run from their own copies of the tree: it
# packs dist/ as built above (ZMQCHAT_BUILT=1) instead of rebuilding it. Its output comes after.
export ZMQCHAT_BUILT=1
extra_stages=()
for s in scripts/ansible-test.sh; do
  [ -f "$s" ] || continue
  out=test/artifacts/$(basename "$s" .sh).log
  printf '\n(%s: started at %s beside the next stages; its output follows them)\n' "$s" "$(date +%H:%M:%S)"
  (bash "$s" >"$out" 2>&1; echo $? >"$out.status") &
  extra_stages+=("$s:$!")
done

# The unit and integration suites on the other supported releases (scripts/node-versions.sh).
versions_pass=0
versions_fail=0
for v in $(bash scripts/node-versions.sh versions); do
  stage "unit and integration tests on Node $v"
  out=test/artifacts/node$v-summary.log
  bash scripts/node-versions.sh test "$v" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  line=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  p=$(echo "${line:-0 passed, 1 failed}" | awk '{print $1}')
  f=$(echo "${line:-0 passed, 1 failed}" | awk '{print $3}')
  [ "$status" -eq 0 ] || { failed_stages+=("node $v tests"); [ "$f" -gt 0 ] || f=1; }
  versions_pass=$((versions_pass + p))
  versions_fail=$((versions_fail + f))
  summary="$summary; Node $v: $p passed $f failed"
done

extra_pass=0
extra_fail=0
for entry in ${extra_stages[@]+"${extra_stages[@]}"}; do
  s=${entry%:*}
  wait "${entry##*:}"
  stage "$s (ran beside the stages above)"
  out=test/artifacts/$(basename "$s" .sh).log
  cat "$out"
  status=$(cat "$out.status" 2>/dev/null || echo 1)
  line=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  extra_pass=$((extra_pass + $(echo "${line:-0 passed, 0 failed}" | awk '{print $1}')))
  extra_fail=$((extra_fail + $(echo "${line:-0 passed, 0 failed}" | awk '{print $3}')))
  if [ "$status" -ne 0 ]; then
    failed_stages+=("$s")
    [ -n "$line" ] || extra_fail=$((extra_fail + 1))
  fi
done

if [ -f dist/bench/run.js ]; then
  stage "benchmark smoke run (npm run bench -- --quick)"
  if npm run --silent bench -- --quick; then extra_pass=$((extra_pass + 1)); else extra_fail=$((extra_fail + 1)); failed_stages+=("bench --quick"); fi
fi

total_pass=$(( node_pass + versions_pass + extra_pass ))
total_fail=$(( node_fail + versions_fail + extra_fail ))
summary="$summary; Ansible and bench: $extra_pass passed $extra_fail failed"
echo
if [ "$total_fail" -gt 0 ]; then
  # Which tests, so that the end of a CI log (often all that is kept of it) names them.
  echo "failed tests (log, location, name -- error):"
  bash scripts/failed-tests.sh "$log" test/artifacts/node[0-9]*-test.log
fi
if [ ${#failed_stages[@]} -gt 0 ]; then
  echo "failed stages: ${failed_stages[*]}"
fi
echo "${total_pass} passed, ${total_fail} failed (${summary})"
[ ${#failed_stages[@]} -eq 0 ] && [ "$total_fail" -eq 0 ]
