#!/usr/bin/env bash
# sandbox.sh - boot a throwaway systemd (252, Debian 12) for tests and the demo, on a machine whose
# PID 1 need not be systemd, without touching the host's files, /tmp, /run, network or root cgroup.
# Driven by tests/harness/sandbox.py (the `systemd` pytest fixture); usable by hand as below.
#
#   sandbox.sh start STATE_DIR        boot, wait until running/degraded, print env lines
#   sandbox.sh exec  STATE_DIR CMD... run CMD inside the guest (all its namespaces)
#   sandbox.sh stop  STATE_DIR        power off, wait, remove cgroups (idempotent)
#
# Env knobs:
#   SBX_BIND="SRC[:DST] ..."  extra read-write bind mounts (e.g. the project dir, same path inside)
#   SBX_USER="name:uid"       pre-create a user with linger, so user@UID.service starts at boot
#   SBX_TIMEOUT=20            seconds to wait for the boot
#   SBX_NAME=pyc-sbx-...      machine and cgroup name (default pyc-sbx-PID-RANDOM)
#
# How it stays safe (run as root):
#  * the guest root is overlayfs(lower = host "/", upper = tmpfs) mounted inside a private mount
#    namespace (unshare --mount): tmpfiles' "clean /tmp", /etc, /var writes all land in the tmpfs.
#  * systemd-nspawn gives the guest new PID/UTS/IPC/net/cgroup namespaces, its own /proc (with a
#    read-only /proc/sys), read-only /sys, a private /dev, /run and /tmp, and no network but lo.
#  * upper/etc/systemd/system is made "opaque": host-local enablements (databases, timers...) vanish,
#    only vendor defaults apply; slow/irrelevant units are masked.
#  * the launcher is moved into its own cgroup (name=systemd and unified) before nspawn runs, so the
#    guest's cgroup tree is pyc-sbx-*/payload and never the host's root cgroup.
#  * /run/systemd/nspawn (nspawn's locks/propagation dir) is shadowed by a tmpfs.
#  * host side reaches the guest system bus through STATE_DIR/bus (bound to the guest's /run/dbus).
set -euo pipefail

cmd=${1:?usage: $0 start|exec|stop STATE_DIR [CMD...]}
state=$(realpath -m "${2:?STATE_DIR missing}")
shift 2 || true
bus="unix:path=$state/bus/system_bus_socket"

cg_roots() {  # hierarchies that decide the guest's cgroup (hybrid: name=systemd + unified)
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo /sys/fs/cgroup; return; fi
  [ -d /sys/fs/cgroup/systemd ] && echo /sys/fs/cgroup/systemd
  [ -d /sys/fs/cgroup/unified ] && echo /sys/fs/cgroup/unified
  return 0
}

leader() { cat "$state/leader" 2>/dev/null; }

system_state() {
  busctl --address="$bus" --timeout=2 get-property org.freedesktop.systemd1 \
    /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager SystemState 2>/dev/null \
    | sed -n 's/^s "\(.*\)"$/\1/p'
}

start() {
  [ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
  if [ -s "$state/nspawn.pid" ] && kill -0 "$(cat "$state/nspawn.pid")" 2>/dev/null; then
    echo "already running (stop it first)" >&2; exit 1
  fi
  if [ -n "${SBX_USER:-}" ] && getent passwd "${SBX_USER##*:}" >/dev/null; then
    echo "uid ${SBX_USER##*:} already exists on the host (the guest shares /etc): pick another" >&2; exit 1
  fi
  mkdir -p "$state/mnt" "$state/bus"
  rm -f "$state/bus/system_bus_socket" "$state/leader" "$state/nspawn.pid"
  local name="${SBX_NAME:-pyc-sbx-$$-$RANDOM}" t0 binds=() b
  echo "$name" > "$state/name"
  for r in $(cg_roots); do mkdir -p "$r/$name"; done
  for b in ${SBX_BIND:-}; do binds+=("--bind=$b"); done
  t0=$(date +%s.%N)

  # Everything below runs in a private mount namespace; it vanishes when nspawn exits.
  SBX_STATE="$state" SBX_NAME="$name" SBX_USER="${SBX_USER:-}" \
  setsid unshare --mount --propagation private -- bash -euc '
    for r in '"$(cg_roots | tr '\n' ' ')"'; do echo $$ > "$r/$SBX_NAME/cgroup.procs"; done
    m=$SBX_STATE/mnt
    mount -t tmpfs -o mode=755,size=512m sbx-upper "$m"
    mkdir -p "$m/upper/etc/systemd/system" "$m/work" "$m/root"
    # opaque: hide host-local unit enablements/overrides
    /usr/bin/python3 -c "import os,sys; os.setxattr(sys.argv[1], \"trusted.overlay.opaque\", b\"y\")" \
      "$m/upper/etc/systemd/system"
    for u in getty.target console-getty.service container-getty@.service systemd-firstboot.service \
      systemd-update-utmp.service systemd-update-utmp-runlevel.service systemd-tmpfiles-clean.timer \
      systemd-ask-password-wall.path systemd-ask-password-console.path systemd-journal-flush.service \
      systemd-random-seed.service systemd-binfmt.service systemd-modules-load.service \
      kmod-static-nodes.service dev-hugepages.mount sys-kernel-config.mount sys-kernel-debug.mount \
      sys-kernel-tracing.mount sys-fs-fuse-connections.mount var-lib-machines.mount \
      systemd-pcrphase.service systemd-pcrphase-sysinit.service systemd-repart.service \
      systemd-machine-id-commit.service postgresql.service docker-registry.service \
      podman.service podman.socket; do
      ln -sf /dev/null "$m/upper/etc/systemd/system/$u"
    done
    tr -d - < /proc/sys/kernel/random/uuid > "$m/upper/etc/machine-id"    # fresh machine id
    mkdir -p "$m/upper/etc/systemd/journald.conf.d"
    printf "[Journal]\nStorage=volatile\n" > "$m/upper/etc/systemd/journald.conf.d/sbx.conf"
    if [ -n "$SBX_USER" ]; then                      # name:uid -> user + linger, pre-boot
      u=${SBX_USER%%:*} id=${SBX_USER##*:}
      for f in passwd group shadow subuid subgid; do cp -a "/etc/$f" "$m/upper/etc/$f" 2>/dev/null || touch "$m/upper/etc/$f"; done
      echo "$u:x:$id:$id::/home/$u:/bin/bash" >> "$m/upper/etc/passwd"
      echo "$u:x:$id:" >> "$m/upper/etc/group"
      echo "$u:!:19000:0:99999:7:::" >> "$m/upper/etc/shadow"
      echo "$u:$((100000 + id * 65536)):65536" >> "$m/upper/etc/subuid"
      echo "$u:$((100000 + id * 65536)):65536" >> "$m/upper/etc/subgid"
      mkdir -p "$m/upper/home/$u" "$m/upper/var/lib/systemd/linger"
      chown "$id:$id" "$m/upper/home/$u"; touch "$m/upper/var/lib/systemd/linger/$u"
    fi
    mount -t overlay sbx-root -o "lowerdir=/,upperdir=$m/upper,workdir=$m/work" "$m/root"
    mkdir -p /run/systemd/nspawn && mount -t tmpfs sbx-nspawn /run/systemd/nspawn
    exec systemd-nspawn --quiet --directory="$m/root" --machine="$SBX_NAME" --boot \
      --register=no --keep-unit --private-network --link-journal=no --resolv-conf=off \
      --timezone=off --console=read-only --bind="$SBX_STATE/bus:/run/dbus" "$@" \
      -- systemd.firstboot=off systemd.show_status=false
  ' sbx "${binds[@]}" > "$state/console.log" 2>&1 < /dev/null &
  echo $! > "$state/nspawn.pid"

  local deadline st=""
  deadline=$(( $(date +%s) + ${SBX_TIMEOUT:-20} ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    kill -0 "$(cat "$state/nspawn.pid")" 2>/dev/null || { cat "$state/console.log" >&2; exit 1; }
    if [ -S "$state/bus/system_bus_socket" ]; then
      st=$(system_state || true)
      case "$st" in running|degraded) break ;; esac
    fi
    sleep 0.05
  done
  # guest PID 1 = nspawn's child process named systemd
  pgrep -P "$(cat "$state/nspawn.pid")" -x systemd > "$state/leader" || true
  if [ -n "${SBX_USER:-}" ]; then   # lingering user@UID starts after "running": wait for its bus
    nsenter --target "$(leader)" --mount sh -c \
      'for i in $(seq 100); do [ -S /run/user/$1/bus ] && exit 0; sleep 0.05; done; exit 1' sh "${SBX_USER##*:}" \
      || echo "user manager bus did not appear" >&2
  fi
  awk -v a="$t0" -v b="$(date +%s.%N)" -v s="${st:-timeout}" 'BEGIN{printf "boot: %s after %.2fs\n", s, b-a}' >&2
  echo "DBUS_SYSTEM_BUS_ADDRESS=$bus"
  echo "SBX_LEADER=$(leader)"
  case "$st" in running|degraded) ;; *) exit 1 ;; esac
}

stop() {
  local np l i
  np=$(cat "$state/nspawn.pid" 2>/dev/null || true); l=$(leader || true)
  if [ -n "$np" ] && kill -0 "$np" 2>/dev/null; then
    [ -n "$l" ] && kill -s SIGRTMIN+4 "$l" 2>/dev/null || kill -TERM "$np"   # clean poweroff
    for i in $(seq 100); do kill -0 "$np" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$np" 2>/dev/null; then                 # hard stop: killing the PID-ns init
      [ -n "$l" ] && kill -KILL "$l" 2>/dev/null; sleep 0.5; kill -KILL "$np" 2>/dev/null || true
    fi
  fi
  local name; name=$(cat "$state/name" 2>/dev/null || true)
  if [ -n "$name" ]; then
    for r in $(cg_roots); do
      [ -d "$r/$name" ] && find "$r/$name" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
  fi
  rm -f "$state/nspawn.pid" "$state/leader" "$state/bus/system_bus_socket"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  exec) exec nsenter --target "$(leader)" --mount --uts --ipc --net --pid --cgroup -- "$@" ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
