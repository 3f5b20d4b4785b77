#!/usr/bin/env bash
# demo.sh - `make demo`: the whole loop on one machine, from nothing back to nothing.
#
#  1. builds the examples' busybox image with `pycontainers image build` (Debian's static busybox)
#  2. boots a throwaway systemd (tests/harness/sandbox.sh: works whether or not PID 1 is systemd)
#  3. inside it: a local registry, the image pushed there (so the real pull path runs), and
#     the daemon as packaging/pycontainers.service following a copy of examples/
#  4. shows systemctl status of the containers, `pycontainers status`, the web page
#  5. edits an example and shows the change rolled out; stops a container by hand and shows
#     the daemon bring it back
#  6. tears everything down (processes, mounts, cgroups, files) and checks nothing is left
#
# Needs root. No input; a few minutes at most. DEMO_KEEP=1 keeps the work dir for a look.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=$repo/.venv
pyc=$venv/bin/pycontainers
[ "$(id -u)" = 0 ] || { echo "make demo needs root (it boots a throwaway systemd)" >&2; exit 1; }
[ -x "$pyc" ] || { echo "$pyc missing: run make deps" >&2; exit 1; }

work=$(mktemp -d /var/tmp/pycontainers-demo.XXXXXX)
state=$work/sandbox
sbx() { bash "$repo/tests/harness/sandbox.sh" "$@"; }
guest() { sbx exec "$state" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; guest "$@"; }

cleanup() {
  local rc=$?
  set +e
  say "tearing down"
  if [ -s "$state/nspawn.pid" ]; then
    # containers are units of the guest's systemd; stopping it stops them (SIGKILL first:
    # busybox sh as a namespace's init ignores SIGTERM and would only cost stop timeouts)
    guest systemctl stop pycontainers.service >/dev/null 2>&1
    guest systemctl kill --signal=SIGKILL 'pycontainers-*.service' >/dev/null 2>&1
    sbx stop "$state"
  fi
  local left=""
  grep -q " $work" /proc/self/mountinfo && left+=" mounts"
  pgrep -f "$work" >/dev/null && left+=" processes"
  ls -d /sys/fs/cgroup/*/pyc-sbx-* /sys/fs/cgroup/pyc-sbx-* 2>/dev/null | \
    grep -q "$(cat "$state/name" 2>/dev/null || echo none)" && left+=" cgroups"
  if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
  if [ -n "$left" ]; then
    echo "demo left things behind:$left" >&2
    exit 1
  fi
  echo "nothing left behind (processes, mounts, cgroups, $work)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() {  # wait_for SECONDS WHAT CMD...: poll CMD in the guest until it succeeds
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until guest "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "timed out waiting for $what" >&2
      guest journalctl -u pycontainers --no-pager -n 30 >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

say "building the example image (busybox from Debian's busybox-static, pycontainers image build)"
bash "$repo/packaging/demo/build-busybox.sh" "$work/oci"
mkdir -p "$work/specs" "$work/varlib" "$work/registry"
cp "$repo"/examples/*.yaml "$work/specs/"

say "booting a throwaway systemd"
SBX_BIND="$repo $work $work/varlib:/var/lib/pycontainers" sbx start "$state" >/dev/null

say "local registry inside the guest, image pushed to it"
guest bash "$repo/packaging/demo/registry.sh" start "$work/registry" 5000
run "$pyc" image copy -q oci:"$work/oci":busybox docker://127.0.0.1:5000/busybox:latest

say "the daemon as a systemd service (packaging/pycontainers.service), following $work/specs"
guest sh -c "sed -e 's|/usr/bin/pycontainers|$pyc|' -e 's|daemon /etc/pycontainers|daemon $work/specs|' \
  '$repo/packaging/pycontainers.service' > /etc/systemd/system/pycontainers.service \
  && systemctl daemon-reload"
run systemctl start pycontainers.service
all_up() {
  for c in web worker cache api; do systemctl is-active --quiet "pycontainers-$c.service" || return 1; done
}
wait_for 120 "the example containers" bash -c "$(declare -f all_up); all_up"
run systemctl status --no-pager --lines=3 pycontainers.service
run systemctl status --no-pager --lines=2 pycontainers-web.service pycontainers-worker.service \
  pycontainers-cache.service pycontainers-api.service
run "$pyc" status
say "the web container answers on the host's port 8080"
run wget -q -O - http://127.0.0.1:8080/
say "the one-shot job ran once"
run journalctl --no-pager -o cat -u pycontainers-migrate.service --grep '^(migrating|done)$'

say "editing examples/web.yaml (GREETING: hello -> 'hello again'): the daemon replaces the container"
sed -i 's/GREETING: hello$/GREETING: hello again/' "$work/specs/web.yaml"
wait_for 60 "the new web container" sh -c \
  "wget -q -O - http://127.0.0.1:8080/ | grep -q 'hello again'"
run wget -q -O - http://127.0.0.1:8080/
run "$pyc" status --events

say "stopping pycontainers-web by hand: the daemon brings it back"
run systemctl stop pycontainers-web.service
wait_for 30 "web to be repaired" systemctl is-active --quiet pycontainers-web.service
run systemctl status --no-pager --lines=0 pycontainers-web.service
run "$pyc" status

say "stopping the daemon leaves the containers running (they are systemd's units)"
run systemctl stop pycontainers.service
run systemctl list-units --no-pager --plain --no-legend 'pycontainers-*.service'
