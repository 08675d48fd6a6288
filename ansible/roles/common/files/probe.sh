#!/bin/sh
# Prints what the roles need to know about a host, one key=value a line, in one round trip:
#   probe.sh NODE_BIN INSTALL_DIR RELEASE_DIR
node=$1 install=$2 release=$3
if v=$("$node" -p "process.versions.node + ' ' + process.versions.modules + '-' + process.platform + '-' + process.arch" 2>/dev/null); then
  echo "node=$v"
else
  echo "node="
fi
if [ -d /run/systemd/system ]; then echo "systemd=yes"; else echo "systemd=no"; fi
echo "analyze=$(command -v systemd-analyze || true)"
echo "daemon=$(command -v daemon || true)"
if [ -n "$release" ] && [ -e "$release/.zmqchat-release-complete" ]; then echo "release=yes"; else echo "release=no"; fi
# Through the node_modules link, so a removed dependency set counts as missing.
if [ -n "$release" ] && [ -e "$release/node_modules/.zmqchat-deps-complete" ]; then echo "deps=yes"; else echo "deps=no"; fi
# The release each service runs (recorded after its last successful health check).
if [ -n "$install" ]; then
  for f in "$install"/*.release; do
    [ -f "$f" ] && echo "running_$(basename "$f" .release)=$(cat "$f")"
  done
fi
exit 0
