#!/usr/bin/env bash
# registry.sh start|stop DIR [PORT] - Debian's docker-registry on 127.0.0.1:PORT (default
# 5000) as a transient systemd unit (pycontainers-demo-registry), storage under DIR.
# Run where the registry must be reachable (inside the sandbox guest for the demo/tests).
set -euo pipefail
cmd=${1:?usage: registry.sh start|stop DIR [PORT]}
dir=${2:?DIR missing}
port=${3:-5000}
unit=pyc-demo-registry-$port
case "$cmd" in
start)
  mkdir -p "$dir/data"
  cat > "$dir/config.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
  systemctl reset-failed "$unit.service" 2>/dev/null || true
  systemd-run --quiet --unit="$unit" --collect /usr/bin/docker-registry serve "$dir/config.yml"
  for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then exit 0; fi
    sleep 0.05
  done
  echo "registry did not come up on 127.0.0.1:$port" >&2
  journalctl -u "$unit" --no-pager -n 20 >&2 || true
  exit 1
  ;;
stop)
  systemctl stop "$unit.service" 2>/dev/null || true
  ;;
esac
