#!/usr/bin/env bash
# Names every failed or cancelled test in the TAP logs given, one line each: the log, the test's
# location (file:line), its name and the first line of its error. scripts/test.sh prints this just
# before its summary, so the end of a CI log says which tests failed, not only how many.
#
#   bash scripts/failed-tests.sh test/artifacts/node-test.log test/artifacts/node22.23.5-test.log
set -uo pipefail
for log in "$@"; do
  [ -f "$log" ] || continue
  awk -v lf="$(basename "$log")" '
    function flush() {
      if (name != "") printf "  %s  %s  %s -- %s\n", lf, (loc != "" ? loc : "?"), name, (err != "" ? err : "(no error text)")
      name = ""; loc = ""; err = ""; wantnext = 0
    }
    /^ *not ok [0-9]+ - / { flush(); sub(/^ *not ok [0-9]+ - /, ""); name = $0; inblock = 1; next }
    inblock && /^ *location: / { loc = $0; sub(/^ *location: /, "", loc); gsub(/\047/, "", loc); sub(/^.*\/test\//, "test/", loc); next }
    # A multi-line error is a YAML block ("error: |-" and indented lines): take its first line.
    inblock && wantnext { wantnext = 0; err = $0; sub(/^ +/, "", err); err = substr(err, 1, 200); next }
    inblock && /^ *error: / && err == "" {
      err = $0; sub(/^ *error: /, "", err)
      if (err ~ /^[|>][-+]?$/) { err = ""; wantnext = 1 } else err = substr(err, 1, 200)
      next
    }
    inblock && /^ *\.\.\.$/ { inblock = 0; flush(); next }
    END { flush() }
  ' "$log"
done | head -60
