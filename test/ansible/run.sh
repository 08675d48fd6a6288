#!/usr/bin/env bash
# The Ansible stage: lint, a real converge of site.yml on inventories/local (InfluxDB, a
# balancer and two chat servers on this machine), a chat through the deployed balancer,
# idempotence, a rolling update under load, a broken release that must stop the rollout,
# and provision-ec2.yml against moto_server with the aws_ec2 inventory.
#
#   bash scripts/ansible-test.sh            # everything
#   KEEP=1 bash scripts/ansible-test.sh     # leave the local deployment's files behind
#
# Every address it talks to is on loopback. Everything it starts is stopped on exit.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ANSIBLE_DIR=$REPO/ansible
TEST_DIR=$REPO/test/ansible
VAULT_PASS=$TEST_DIR/vault-password.txt
STAGE_START=$(date +%s)

# Each check appends "PASS name" or "FAIL name" to $RESULTS; the EC2 part runs in the
# background with a results file of its own, and finish counts them all.
WORK=$(mktemp -d /tmp/zmqchat-ansible-test.XXXXXX)
chmod 0755 "$WORK"
RESULTS=$WORK/results-local
: >"$RESULTS"
EC2_PID=""
SENDER_PID=""
PIDS_TO_KILL=()
export ZMQCHAT_LOCAL_ROOT=$WORK/hosts

# Stops everything this stage started, whatever happens.
cleanup() {
  local rc=$?
  # The background jobs first, with the command each is running.
  local job
  for job in "$SENDER_PID" "$EC2_PID"; do
    [ -n "$job" ] || continue
    pkill -TERM -P "$job" 2>/dev/null
    kill "$job" 2>/dev/null
  done
  [ -f "$WORK/moto.pid" ] && kill "$(cat "$WORK/moto.pid")" 2>/dev/null
  # Stop every service the converges started, through the same control scripts.
  for ctl in "$ZMQCHAT_LOCAL_ROOT"/*/opt/sbin/*; do
    [ -x "$ctl" ] && "$ctl" stop >/dev/null 2>&1
  done
  for pid in "${PIDS_TO_KILL[@]}"; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  if [ "${KEEP:-0}" = 1 ]; then
    say "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s [ansible +%ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - STAGE_START))" "$*"; }
pass() { echo "PASS $1" >>"$RESULTS"; say "ok - $1"; }
fail() {
  echo "FAIL $1" >>"$RESULTS"
  say "FAIL - $1"
  [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/    /' | tail -n 40
  return 0
}
# Runs a check: check NAME COMMAND...; the command's output is shown only when it fails.
check() {
  local name=$1 out rc
  shift
  out=$("$@" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then pass "$name"; else fail "$name (exit $rc)" "$out"; fi
  return $rc
}
finish() {
  if [ -n "$EC2_PID" ]; then
    say "waiting for the EC2 part (moto_server)"
    wait "$EC2_PID"
    EC2_PID=""
    echo "---- EC2 part (ran in the background) ----"
    cat "$WORK/ec2-stage.log"
    echo "----"
  fi
  local passed failed
  passed=$(cat "$WORK"/results-* | grep -c '^PASS ')
  failed=$(cat "$WORK"/results-* | grep -c '^FAIL ')
  say "stage took $(($(date +%s) - STAGE_START))s"
  if [ "$failed" -gt 0 ]; then
    say "failed checks:"
    grep -h '^FAIL ' "$WORK"/results-* | sed 's/^FAIL /  - /'
  fi
  echo "ansible: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
# A prerequisite is missing: say what to install, count it as a failure, stop.
missing() {
  fail "prerequisite: $1"
  finish
  exit 1
}

# ---------------------------------------------------------------- prerequisites

DEBIAN_PACKAGES=(ansible ansible-lint yamllint influxdb python3-influxdb python3-boto3 python3-botocore
  python3-apt daemon jq curl openssh-client procps systemd)
need_install=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || need_install+=("$pkg")
done
if [ ${#need_install[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${need_install[*]}"
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_install[@]}") \
      >/tmp/zmqchat-ansible-apt.log 2>&1; then
      tail -n 20 /tmp/zmqchat-ansible-apt.log
      missing "apt-get install ${need_install[*]} failed (log: /tmp/zmqchat-ansible-apt.log)"
    fi
  else
    missing "install the Debian packages ${need_install[*]} (as root: apt-get install ${need_install[*]})"
  fi
fi
for tool in ansible-playbook ansible-lint yamllint ansible-inventory influxd daemon jq curl ssh-keygen systemd-analyze node npm; do
  command -v "$tool" >/dev/null || missing "$tool is not on PATH"
done
COLLECTIONS=$(ansible-galaxy collection list 2>/dev/null)
for collection in amazon.aws community.general ansible.posix; do
  grep -q "^$collection " <<<"$COLLECTIONS" || missing "the $collection collection (Debian's ansible package brings it)"
done
[ -f "$VAULT_PASS" ] || missing "$VAULT_PASS is missing"
[ "$(id -u)" -eq 0 ] || missing "the local converge runs services as their own users: run as root"

# moto_server and a botocore new enough to follow AWS_ENDPOINT_URL (>= 1.31) come from
# the machine's python3 (Debian's botocore 1.29 ignores the variable).
MACHINE_PY=$(command -v python3)
command -v moto_server >/dev/null && "$MACHINE_PY" -c 'import moto' 2>/dev/null ||
  missing "moto_server (the local AWS stand-in): pip install 'moto[server]' into the python3 on PATH"
BOTO_SITE=$("$MACHINE_PY" -c 'import botocore, os; print(os.path.dirname(os.path.dirname(botocore.__file__)))' 2>/dev/null) ||
  missing "botocore in the python3 on PATH (it comes with moto)"

# ---------------------------------------------------------------- environment

mkdir -m 0755 "$ZMQCHAT_LOCAL_ROOT"
export ANSIBLE_CONFIG=$ANSIBLE_DIR/ansible.cfg
export ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=true
export ANSIBLE_FORCE_COLOR=false ANSIBLE_NOCOLOR=true
export ANSIBLE_LOCAL_TEMP=$WORK/ansible-tmp ANSIBLE_REMOTE_TEMP=$WORK/ansible-tmp
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
unset AWS_PROFILE AWS_SESSION_TOKEN

cd "$ANSIBLE_DIR" || missing "$ANSIBLE_DIR"

LOCAL_PORTS=(15555 15556 15557 15558 18080 18081 18082 18086 18088)
for port in "${LOCAL_PORTS[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    missing "port $port on 127.0.0.1 is in use (inventories/local needs ${LOCAL_PORTS[*]}); stop what holds it"
  fi
done

playbook() {
  # playbook LOG ARGS...: runs ansible-playbook with the local inventory and the test vault.
  local log=$1
  shift
  ansible-playbook -i inventories/local --vault-password-file "$VAULT_PASS" "$@" >"$log" 2>&1
}
recap() { awk '/^PLAY RECAP/{on=1; next} on && / ok=/' "$1"; }
# Every host in the recap has changed=0, failed=0, unreachable=0.
recap_clean() {
  local lines
  lines=$(recap "$1")
  [ -n "$lines" ] || { echo "no PLAY RECAP in $1"; return 1; }
  echo "$lines"
  [ -z "$(grep -v -E 'changed=0 +unreachable=0 +failed=0' <<<"$lines")" ]
}
health_version() { curl -sf --max-time 3 "http://127.0.0.1:$1/healthz" | jq -r .version; }
expect_versions() {
  # expect_versions VERSION PORT...: every /healthz reports VERSION.
  local want=$1 port got bad=0
  shift
  for port in "$@"; do
    got=$(health_version "$port")
    echo "port $port: ${got:-no answer} (want $want)"
    [ "$got" = "$want" ] || bad=1
  done
  return $bad
}

# ---------------------------------------------------------------- lint

check "yamllint (ansible/, test/ansible/)" yamllint -s . ../test/ansible
# ansible-lint 6.13 prints "Passed" with its profile even when it should not (and does not
# validate module arguments); its exit status is what counts.
check "ansible-lint (production profile)" ansible-lint --offline -q
# Neither ansible-lint 6.13 nor --syntax-check validates module arguments, and some tasks
# never run here (InfluxDB Enterprise, NodeSource): check them against ansible-doc.
mapfile -t YAML_FILES < <(find . ../test/ansible -name '*.yml' -not -path './.cache/*' -not -path './inventories/*' | sort)
check "module arguments of every task match ansible-doc (${#YAML_FILES[@]} files)" \
  /usr/bin/python3 ../test/ansible/check-module-args.py "${YAML_FILES[@]}"
PLAYBOOKS=(site.yml influxdb.yml rolling-update.yml provision-ec2.yml ../test/ansible/enterprise-render.yml ../test/ansible/unit-verify.yml)
# One process for all of them (each ansible-playbook start costs seconds); it names the one that fails.
check "syntax-check of every playbook (${PLAYBOOKS[*]##*/})" \
  ansible-playbook -i inventories/local --vault-password-file "$VAULT_PASS" --syntax-check "${PLAYBOOKS[@]}"
mkdir -p "$WORK/render"
check "unit validation writes a clean unit and refuses one with a mere warning (Restart=allways)" \
  env ZMQCHAT_RENDER_DIR="$WORK/render" ansible-playbook -i localhost, ../test/ansible/unit-verify.yml
check "InfluxDB Enterprise meta/data configs render (license, replication 3, quorum, unlimited series, WAL fsync)" \
  env ZMQCHAT_RENDER_DIR="$WORK/render" ansible-playbook -i localhost, ../test/ansible/enterprise-render.yml

# ---------------------------------------------------------------- EC2 against moto_server
# Independent of the local deployment, so it runs in the background meanwhile.

ec2_part() {
RESULTS=$WORK/results-ec2
: >"$RESULTS"
MOTO_PORT=$("$MACHINE_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
echo $! >"$WORK/moto.pid"
DEADLINE=$(($(date +%s) + 30))
until curl -sf -o /dev/null "http://127.0.0.1:$MOTO_PORT/moto-api/" || [ "$(date +%s)" -ge "$DEADLINE" ]; do sleep 0.2; done

# Debian's botocore 1.29 ignores AWS_ENDPOINT_URL; the machine python's botocore does not.
# Put it first on PYTHONPATH for these runs only, so the playbook needs no test hook.
SHIM=$WORK/botocore-shim
mkdir -p "$SHIM"
for mod in boto3 botocore s3transfer; do ln -s "$BOTO_SITE/$mod" "$SHIM/$mod"; done
aws_env=(env PYTHONPATH="$SHIM" AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_ACCESS_KEY_ID=testing
  AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=eu-west-1 AWS_REGION=eu-west-1 AWS_EC2_METADATA_DISABLED=true)
check "Ansible's python sees botocore >= 1.31 through the shim" \
  "${aws_env[@]}" /usr/bin/python3 -c 'import botocore, sys; v = tuple(map(int, botocore.__version__.split(".")[:2])); print(botocore.__version__); sys.exit(v < (1, 31))'

ssh-keygen -q -t ed25519 -N '' -C zmqchat-test -f "$WORK/id_ed25519" </dev/null
AMI=$("${aws_env[@]}" /usr/bin/python3 -c 'import boto3; print(boto3.client("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"])' 2>"$WORK/ami.err")
provision() {
  "${aws_env[@]}" ansible-playbook provision-ec2.yml -e ec2_admin_cidr=192.0.2.0/24 \
    -e ec2_public_key_file="$WORK/id_ed25519.pub" -e ec2_ami_id="$AMI" >"$1" 2>&1
}
say "provision-ec2.yml against moto_server on 127.0.0.1:$MOTO_PORT (image $AMI)"
T0=$(date +%s)
if provision "$WORK/provision1.log"; then
  pass "provision-ec2.yml against moto_server ($(($(date +%s) - T0))s)"
else
  fail "provision-ec2.yml against moto_server" "$(grep -E -A3 'fatal:|FAILED!|ERROR' "$WORK/provision1.log" | cut -c1-800 | tail -n 30)"
fi
T0=$(date +%s)
provision "$WORK/provision2.log"
RC=$?
if [ $RC -eq 0 ] && recap_clean "$WORK/provision2.log" >/dev/null; then
  pass "provision-ec2.yml again: changed=0 ($(($(date +%s) - T0))s)"
else
  fail "provision-ec2.yml again: changed=0 (exit $RC)" \
    "$(recap "$WORK/provision2.log"; grep -E -B2 '^changed:' "$WORK/provision2.log" | grep TASK | sort | uniq -c)"
fi

client_ports() {
  # The balancer's security group lets clients reach P (5555) only: no P+3 without zmqchat_legacy_subscribers.
  local ports
  ports=$("${aws_env[@]}" /usr/bin/python3 -c '
import boto3
g = boto3.client("ec2").describe_security_groups(Filters=[{"Name": "group-name", "Values": ["zmqchat-balancer"]}])
rules = g["SecurityGroups"][0]["IpPermissions"]
print(" ".join(sorted(str(r["FromPort"]) for r in rules if r["FromPort"] in range(5555, 5559) and r.get("IpRanges"))))') || return 1
  echo "client ports open: $ports"
  [ "$ports" = 5555 ]
}
check "the balancer's security group opens only P (5555) to clients, not P+3" client_ports

inventory_groups() {
  "${aws_env[@]}" ansible-inventory -i inventories/aws_ec2.yml --graph || return 1
  "${aws_env[@]}" ansible-inventory -i inventories/aws_ec2.yml --list >"$WORK/inventory.json" || return 1
  jq -e '(.zmqchat_balancer.hosts | length) == 1 and (.zmqchat_server.hosts | length) == 2
         and (.zmqchat_influxdb.hosts | length) == 1' "$WORK/inventory.json" >/dev/null ||
    { echo "want 1 balancer, 2 servers, 1 influxdb"; return 1; }
  jq -e '[._meta.hostvars[] | select((.zmqchat_advertise_host // "") == "")] | length == 0' "$WORK/inventory.json" >/dev/null ||
    { echo "a host has no zmqchat_advertise_host (private IP)"; return 1; }
}
check "ansible-inventory -i inventories/aws_ec2.yml --graph lists zmqchat_balancer (1), zmqchat_server (2), zmqchat_influxdb (1)" inventory_groups

broken_inventory_fails() {
  # A failing inventory source must fail, not yield an empty inventory (gotcha 4).
  ! env AWS_ENDPOINT_URL=http://127.0.0.1:9 PYTHONPATH="$SHIM" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    AWS_EC2_METADATA_DISABLED=true AWS_MAX_ATTEMPTS=1 \
    timeout 60 ansible-inventory -i inventories/aws_ec2.yml --list
}
check "an unreachable EC2 API fails the inventory instead of yielding zero hosts" broken_inventory_fails
kill "$(cat "$WORK/moto.pid")" 2>/dev/null
}
say "starting the EC2 part in the background (provision-ec2.yml against moto_server)"
ec2_part >"$WORK/ec2-stage.log" 2>&1 &
EC2_PID=$!

# ---------------------------------------------------------------- packages to deploy

say "building and packing the app"
PKG_DIR=$WORK/packages
mkdir -p "$PKG_DIR"
# Under `npm test` (ZMQCHAT_BUILT=1) the build is done and other suites run from dist/ beside this
# stage: it is packed as it is, without rewriting dist/ under them (npm pack would run `prepare`).
if [ "${ZMQCHAT_BUILT:-}" = 1 ]; then build=(true); pack=(npm pack --ignore-scripts); else build=(npm run build); pack=(npm pack); fi
if ! (cd "$REPO" && "${build[@]}" && "${pack[@]}" --pack-destination "$PKG_DIR") >"$WORK/pack.log" 2>&1; then
  fail "npm run build && npm pack" "$(tail -n 30 "$WORK/pack.log")"
  finish
  exit 1
fi
V1_TGZ=$(ls "$PKG_DIR"/zmqchat-*.tgz | head -n 1)
V1=$(basename "$V1_TGZ" .tgz)
V1=${V1#zmqchat-}
if ! tar -xOzf "$V1_TGZ" package/dist/bin/zmqchat.js >/dev/null 2>&1; then
  fail "the package holds dist/bin/zmqchat.js (the CLI of the contract)"
  finish
  exit 1
fi
pass "npm pack made zmqchat-$V1.tgz with dist/bin/zmqchat.js"

# repack NEW_VERSION [broken]: the v1 package with another version (and, if broken, a
# server command that exits at once, as a release with a fatal start-up bug would).
repack() {
  local version=$1 broken=${2:-} dir=$WORK/repack-$1
  mkdir -p "$dir"
  tar -xzf "$V1_TGZ" -C "$dir"
  node -e '
    const fs = require("fs"); const p = process.argv[1];
    const pkg = JSON.parse(fs.readFileSync(p, "utf8")); pkg.version = process.argv[2];
    fs.writeFileSync(p, JSON.stringify(pkg, null, 2) + "\n");' "$dir/package/package.json" "$version"
  if [ -n "$broken" ]; then
    local bin=$dir/package/dist/bin/zmqchat.js
    { head -n 1 "$bin"
      echo 'if (process.argv[2] === "server") { console.error("deliberately broken release"); process.exit(1); }'
      tail -n +2 "$bin"; } >"$bin.new" && mv "$bin.new" "$bin"
  fi
  tar -czf "$PKG_DIR/zmqchat-$version.tgz" -C "$dir" package
  echo "$PKG_DIR/zmqchat-$version.tgz"
}
IFS=. read -r MAJ MIN PATCH <<<"${V1%%-*}"
V2=$MAJ.$MIN.$((PATCH + 1))-rolling
V3=$MAJ.$MIN.$((PATCH + 2))-broken
V2_TGZ=$(repack "$V2")
V3_TGZ=$(repack "$V3" broken)

# ---------------------------------------------------------------- converge

say "converge 1: site.yml, zmqchat $V1 on inventories/local (a cold dependency cache builds better-sqlite3: ~2 min)"
T0=$(date +%s)
if playbook "$WORK/converge1.log" site.yml -e zmqchat_package="$V1_TGZ"; then
  pass "converge site.yml on inventories/local ($(($(date +%s) - T0))s)"
  CONVERGED=1
else
  fail "converge site.yml on inventories/local" "$(grep -E -A3 'fatal:|FAILED!|ERROR' "$WORK/converge1.log" | cut -c1-600 | tail -n 30; recap "$WORK/converge1.log")"
  CONVERGED=0
fi

check "every service reports $V1 on /healthz (balancer, server1, server2)" expect_versions "$V1" 18080 18081 18082
check "InfluxDB answers /ping" curl -sf -o /dev/null -w '%{http_code}\n' http://127.0.0.1:18086/ping

verify_units() {
  local unit out bad=0 n=0
  for unit in "$ZMQCHAT_LOCAL_ROOT"/*/systemd/*.service; do
    [ -f "$unit" ] || continue
    n=$((n + 1))
    grep -q '^Restart=always$' "$unit" || { echo "$unit: no Restart=always"; bad=1; }
    grep -q '^NoNewPrivileges=true$' "$unit" || { echo "$unit: no hardening"; bad=1; }
    case "$(basename "$unit")" in
      zmqchat-*) grep -q '^MemoryMax=[0-9]' "$unit" || { echo "$unit: no MemoryMax="; bad=1; } ;;
    esac
    out=$(systemd-analyze verify "$unit" 2>&1)
    if [ $? -ne 0 ] || [ -n "$out" ]; then
      echo "$unit: $out"
      bad=1
    fi
  done
  echo "$n units"
  [ "$n" -eq 4 ] && [ $bad -eq 0 ]
}
check "4 rendered systemd units (Restart=always, hardened, MemoryMax= on zmqchat's) pass systemd-analyze verify with no output" verify_units

# ---------------------------------------------------------------- chat through the deployment

CLI_HOME=$WORK/cli
# What the deployment wrote for clients: the endpoint and the balancer's CurveZMQ key to pin.
CLIENT_CONFIG=$ZMQCHAT_LOCAL_ROOT/client-config.json
zc() {
  # zc USER ARGS...: the CLI of the package that was deployed, against the deployed balancer.
  local user=$1
  shift
  node "$ZMQCHAT_LOCAL_ROOT/server1/opt/releases/$V1/dist/bin/zmqchat.js" \
    --home "$CLI_HOME" --config "$CLIENT_CONFIG" --user "$user" --endpoint tcp://127.0.0.1:15555 "$@"
}

client_config_pins_the_balancer() {
  cat "$CLIENT_CONFIG" || return 1
  local key
  key=$(jq -r .curveServerKey "$CLIENT_CONFIG") || return 1
  [ "$key" = "$(tr -d '\n' <"$ZMQCHAT_LOCAL_ROOT/balancer1/etc/curve.pub")" ] || { echo "not balancer1's key"; return 1; }
  [ "$(stat -c %a "$ZMQCHAT_LOCAL_ROOT/balancer1/etc/curve.json")" = 640 ] || { echo "the key pair file is not 0640"; return 1; }
  grep -q -- "--curve-servers" "$ZMQCHAT_LOCAL_ROOT/balancer1/opt/sbin/zmqchat-balancer" || { echo "the balancer runs without an allow-list"; return 1; }
  [ "$(grep -vc '^#' "$ZMQCHAT_LOCAL_ROOT/balancer1/etc/curve-servers.allow")" = 2 ] || { echo "the allow-list does not hold the 2 servers"; return 1; }
}
check "the deployment runs CurveZMQ: client config pins balancer1's key; both servers allow-listed" client_config_pins_the_balancer

chat() {
  local u
  for u in alice bob carol; do zc "$u" register || return 1; done
  local ONE_TO_ONE_ID GROUP_ID
  ONE_TO_ONE_ID=$(zc alice send bob "hello bob, from the deployed cluster") || return 1
  zc alice group create ops bob carol || return 1
  # Joining a group is an invitation each member accepts.
  zc bob group accept ops || return 1
  zc carol group accept ops || return 1
  GROUP_ID=$(zc alice send --group ops "hello ops") || return 1
  # check runs this in a subshell: hand the ids on through files.
  echo "$ONE_TO_ONE_ID" >"$WORK/id-1to1"
  echo "$GROUP_ID" >"$WORK/id-group"
  echo "1:1 id $ONE_TO_ONE_ID, group id $GROUP_ID"
  zc bob history alice --json | tee "$WORK/bob-history.json"
  jq -e --arg id "$ONE_TO_ONE_ID" 'select(.id == $id and .from == "alice" and .verified == true)' "$WORK/bob-history.json" >/dev/null ||
    { echo "bob's history lacks $ONE_TO_ONE_ID"; return 1; }
  zc carol history --group ops --json | tee "$WORK/carol-group.json"
  jq -e --arg id "$GROUP_ID" 'select(.id == $id and .group == "ops" and .verified == true)' "$WORK/carol-group.json" >/dev/null ||
    { echo "carol's group history lacks $GROUP_ID"; return 1; }
}
check "chat through the deployed balancer: register alice, bob, carol; 1:1; group" chat

topic_key_deployed() {
  local file=$ZMQCHAT_LOCAL_ROOT/balancer1/etc/topic.key
  grep -q -- "--topic-key-file" "$ZMQCHAT_LOCAL_ROOT/balancer1/opt/sbin/zmqchat-balancer" || { echo "the balancer runs without --topic-key-file"; return 1; }
  [ "$(stat -c %a "$file")" = 640 ] || { echo "the topic key file is not 0640"; return 1; }
  [ ! -e "$ZMQCHAT_LOCAL_ROOT/balancer1/etc/cluster-secret" ] || { echo "the balancer was given the cluster secret"; return 1; }
  # The key the controller derived is the one the servers' secret gives (core/protocol/topics.ts).
  local want
  want=$(node "$ZMQCHAT_LOCAL_ROOT/server1/opt/releases/$V1/dist/bin/zmqchat.js" topic-key \
    --secret-file "$ZMQCHAT_LOCAL_ROOT/server1/etc/cluster-secret") || return 1
  [ "$(tr -d '\n' <"$file")" = "$want" ] || { echo "the balancer's topic key does not match the servers' secret"; return 1; }
  # And a live delivery passes it: bob listens, alice sends, bob's listen prints it. Started as a
  # plain command, so $! is node itself (a backgrounded function would be a subshell, and a
  # background job of a non-interactive shell ignores SIGINT).
  node "$ZMQCHAT_LOCAL_ROOT/server1/opt/releases/$V1/dist/bin/zmqchat.js" --home "$CLI_HOME" \
    --config "$CLIENT_CONFIG" --user bob --endpoint tcp://127.0.0.1:15555 listen --json \
    >"$WORK/bob-listen.out" 2>"$WORK/bob-listen.err" &
  local pid=$! i
  for i in $(seq 1 100); do grep -q online "$WORK/bob-listen.err" && break; sleep 0.1; done
  zc alice send bob "live through the deployed balancer" >/dev/null || { kill "$pid"; return 1; }
  for i in $(seq 1 150); do
    if grep -q "live through the deployed balancer" "$WORK/bob-listen.out"; then
      kill -TERM "$pid"
      wait "$pid" || true
      return 0
    fi
    sleep 0.1
  done
  kill -TERM "$pid"
  wait "$pid" || true
  cat "$WORK/bob-listen.err"
  echo "bob's listen did not print alice's message"
  return 1
}
check "the balancer checks delivery topics with the key derived from the servers' secret (not the secret), and a live delivery passes it" topic_key_deployed

rogue_gets_nothing() {
  # The attack of issue 12, against what Ansible deployed: a raw DEALER announcing READY on
  # the backend port and a raw PUB on the publication port, while alice chats with bob.
  local key rogue rc i
  key=$(jq -r .curveServerKey "$CLIENT_CONFIG") || return 1
  node "$TEST_DIR/rogue.mjs" 127.0.0.1 15555 "$key" 60 "$(tr -d '\n' <"$ZMQCHAT_LOCAL_ROOT/balancer1/etc/topic.key")" \
    >"$WORK/rogue.out" 2>&1 &
  rogue=$!
  PIDS_TO_KILL+=("$rogue")
  i=0
  until grep -q "rogue ready" "$WORK/rogue.out" || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
  for i in 1 2 3; do
    zc alice send bob "while a rogue listens #$i" >/dev/null || { kill "$rogue"; echo "send $i failed"; return 1; }
  done
  zc bob history alice --json --limit 3 | jq -e 'select(.text | startswith("while a rogue"))' >/dev/null ||
    { kill "$rogue"; echo "bob did not get the messages"; return 1; }
  kill -TERM "$rogue"
  wait "$rogue"
  rc=$?
  cat "$WORK/rogue.out"
  return $rc
}
check "a rogue DEALER (READY on the backend) and a rogue PUB get nothing from the deployed balancer while alice chats" rogue_gets_nothing

no_legacy_port() {
  # Clients of this release take live deliveries over P: the balancer binds no XPUB on P+3.
  grep -q -- "--no-legacy-subscribers" "$ZMQCHAT_LOCAL_ROOT/balancer1/opt/sbin/zmqchat-balancer" ||
    { echo "the balancer runs without --no-legacy-subscribers"; return 1; }
  if (exec 3<>/dev/tcp/127.0.0.1/15558) 2>/dev/null; then echo "something listens on P+3 (15558)"; return 1; fi
  # Positive control: the same probe finds the balancer's P.
  (exec 3<>/dev/tcp/127.0.0.1/15555) 2>/dev/null || { echo "the probe does not find P (15555) either"; return 1; }
}
check "the deployed balancer leaves P+3 unbound (--no-legacy-subscribers); P answers" no_legacy_port

influx_query() {
  curl -sf --max-time 10 -G http://127.0.0.1:18086/query \
    --data-urlencode "u=zmqchat" --data-urlencode "p=$INFLUX_APP_PASSWORD" \
    --data-urlencode "db=zmqchat" --data-urlencode "q=$1"
}
INFLUX_APP_PASSWORD=$(ansible-vault view --vault-password-file "$VAULT_PASS" inventories/local/group_vars/local/vault.yml 2>/dev/null |
  awk -F': ' '/^vault_zmqchat_influxdb_password:/{print $2}')
# ids_in_influx ID...: every message id is in some mailbox in the deployed InfluxDB.
ids_in_influx() {
  local id n missing=0
  for id in "$@"; do
    n=$(influx_query "SELECT count(\"envelope\") FROM \"mailbox\".\"mailbox\" WHERE \"id\" = '$id'" |
      jq -r '.results[0].series[0].values[0][1] // 0')
    [ "${n:-0}" -gt 0 ] || { echo "message $id is not in InfluxDB"; missing=$((missing + 1)); }
  done
  [ $missing -eq 0 ]
}
influx_has_chat() {
  influx_query 'SHOW MEASUREMENTS' | jq -c '[.results[0].series[0].values[][0]]' || return 1
  influx_query 'SHOW MEASUREMENTS' | jq -e '.results[0].series[0].values | map(.[0]) | index("mailbox")' >/dev/null || return 1
  influx_query 'SELECT count("envelope") FROM "mailbox"."mailbox"' | jq -c '.results[0].series[0].values[0]'
  local one group
  one=$(cat "$WORK/id-1to1" 2>/dev/null)
  group=$(cat "$WORK/id-group" 2>/dev/null)
  [ -n "$one" ] && [ -n "$group" ] || { echo "no message ids from the chat"; return 1; }
  ids_in_influx "$one" "$group"
}
check "the messages are in the deployed InfluxDB (SHOW MEASUREMENTS, mailbox points by id)" influx_has_chat

# ---------------------------------------------------------------- idempotence

say "converge 2: site.yml again, expecting changed=0 on every host"
T0=$(date +%s)
playbook "$WORK/converge2.log" site.yml -e zmqchat_package="$V1_TGZ"
RC=$?
RECAP=$(recap_clean "$WORK/converge2.log")
if [ $RC -eq 0 ] && recap_clean "$WORK/converge2.log" >/dev/null; then
  pass "second converge: changed=0 on every host ($(($(date +%s) - T0))s)"
else
  fail "second converge: changed=0 on every host (exit $RC)" \
    "$RECAP
$(grep -E -B2 '^changed:' "$WORK/converge2.log" | grep TASK | sort | uniq -c)"
fi

# ---------------------------------------------------------------- dry run

say "dry run: rolling-update.yml --check with $V2 (health checks are skipped in check mode)"
T0=$(date +%s)
dry_run() {
  playbook "$WORK/check.log" rolling-update.yml --check --limit balancer1,server1 -e zmqchat_package="$V2_TGZ" || {
    grep -E -A3 'fatal:|FAILED!|ERROR' "$WORK/check.log" | cut -c1-600 | tail -n 20
    return 1
  }
  recap "$WORK/check.log"
  expect_versions "$V1" 18080 18081 18082
}
check "rolling-update.yml --check with a new release (balancer1, server1) passes and changes nothing" dry_run

# ---------------------------------------------------------------- rolling update under load

# Sends alice -> bob in a loop until told to stop (bounded in count and time). Each line
# of its log: the exit status and what `send` printed (the message id when acknowledged).
SENDS=$WORK/sends.log
: >"$SENDS"
sender() {
  local i=0 deadline=$(($(date +%s) + 300)) out rc
  while [ ! -e "$WORK/stop-sending" ] && [ $i -lt 400 ] && [ "$(date +%s)" -lt "$deadline" ]; do
    i=$((i + 1))
    out=$(zc alice send bob "during the rollout #$i" 2>>"$WORK/sender.err")
    rc=$?
    echo "$rc $out" >>"$SENDS"
    # Pace the client (about two sends a second), so that it does not starve the rollout
    # of CPU on a small machine.
    sleep 0.3
  done
}

say "rolling update to $V2 (rolling-update.yml) while alice keeps sending to bob"
sender &
SENDER_PID=$!
PIDS_TO_KILL+=("$SENDER_PID")
T0=$(date +%s)
playbook "$WORK/rolling.log" rolling-update.yml -e zmqchat_package="$V2_TGZ"
RC=$?
ROLL_SECONDS=$(($(date +%s) - T0))
# A few more sends on the new version, then stop the sender.
AFTER=$(($(wc -l <"$SENDS") + 3))
DEADLINE=$(($(date +%s) + 60))
while [ "$(wc -l <"$SENDS")" -lt "$AFTER" ] && [ "$(date +%s)" -lt "$DEADLINE" ]; do sleep 0.5; done
touch "$WORK/stop-sending"
wait "$SENDER_PID"
SENDER_PID=""
if [ $RC -eq 0 ]; then
  pass "rolling update to $V2, one host at a time (${ROLL_SECONDS}s)"
else
  fail "rolling update to $V2 (exit $RC)" "$(grep -E -A3 'fatal:|FAILED!|ERROR' "$WORK/rolling.log" | cut -c1-600 | tail -n 30; recap "$WORK/rolling.log")"
fi
check "after the rollout every service reports $V2" expect_versions "$V2" 18080 18081 18082

rolled_in_order() {
  # Each server was drained and restarted, and healthy on the new version, before the next began.
  awk '/^TASK / {t = ($0 ~ /Drain and restart zmqchat-server|Wait until \/healthz reports/) ? $0 : ""}
       /^(changed|ok): \[server[12]\]/ && t != "" {print t " -> " $0; t = ""}' "$WORK/rolling.log" | tee "$WORK/order.txt"
  local order
  order=$(grep -oE 'server[12]\]$' "$WORK/order.txt" | tr -d ']' | tr '\n' ' ')
  [ "$order" = "server1 server1 server2 server2 " ]
}
check "servers rolled one at a time: server1 drained, restarted, healthy; then server2" rolled_in_order

no_ack_lost() {
  local acked total ids
  total=$(wc -l <"$SENDS")
  ids=$(awk '$1 == 0 && $2 != "" {print $2}' "$SENDS")
  acked=$(echo "$ids" | grep -c .)
  echo "$total sends during the rollout, $acked acknowledged, $((total - acked)) not acknowledged (allowed: the sender knows)"
  [ "$acked" -ge 5 ] || { echo "too few acknowledged sends to judge"; return 1; }
  zc bob history alice --json --limit 1000 >"$WORK/bob-after.json" || return 1
  local lost
  lost=$(comm -23 <(echo "$ids" | sort -u) <(jq -r .id "$WORK/bob-after.json" | sort -u))
  [ -z "$lost" ] || { echo "acknowledged but missing from bob's history: $lost"; return 1; }
  # shellcheck disable=SC2086
  ids_in_influx $ids
}
check "no acknowledged message lost during the rollout (send ids vs history --json and InfluxDB)" no_ack_lost

# ---------------------------------------------------------------- a broken release

say "rolling out a broken release $V3 to the servers: it must stop at the first one"
playbook "$WORK/broken.log" rolling-update.yml --limit zmqchat_server -e zmqchat_package="$V3_TGZ" -e zmqchat_health_retries=10
RC=$?
broken_stopped() {
  recap "$WORK/broken.log"
  grep -E '^fatal: \[server1\]' "$WORK/broken.log" | cut -c1-400 | tail -n 2
  [ $RC -ne 0 ] || { echo "the rollout of a broken release succeeded"; return 1; }
  local lines
  lines=$(recap "$WORK/broken.log")
  grep -qE '^server1 .* failed=1' <<<"$lines" || { echo "server1 did not fail"; return 1; }
  if grep -qE '^server2 ' <<<"$lines" && ! grep -qE '^server2 .* changed=0 ' <<<"$lines"; then
    echo "server2 was changed"
    return 1
  fi
  grep -q 'rolled back to' "$WORK/broken.log" || { echo "server1 was not rolled back"; return 1; }
}
check "the broken release fails the rollout on server1 and server2 is not touched" broken_stopped
check "server2 still serves $V2 (and server1 is back on $V2)" expect_versions "$V2" 18082 18081
still_chats() {
  local id
  id=$(zc carol send alice "after the failed rollout") || return 1
  zc alice history carol --json | jq -e --arg id "$id" 'select(.id == $id)' >/dev/null
}
check "chat still works after the failed rollout" still_chats


finish
