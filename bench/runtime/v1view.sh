#!/bin/sh
# v1view.sh COMMAND [ARG...] - run COMMAND (as root) in a private mount namespace whose
# /sys/fs/cgroup shows only the cgroup v1 hierarchies. crun 1.8 refuses hybrid hosts whose
# cgroup2 mount has controllers; in this view it runs in v1 mode, so the benchmark can put
# it beside runc and pycontainers-runtime, which all see the same view. The host's mounts
# are untouched: a new tmpfs covers /sys/fs/cgroup inside the namespace only (remounting the
# existing tmpfs would change the host's, whose superblock is shared).
set -eu
if [ "${_PYC_V1VIEW:-}" != 1 ]; then
  exec env _PYC_V1VIEW=1 unshare --mount --propagation private "$0" "$@"
fi
unset _PYC_V1VIEW
hierarchies=$(awk '$3 == "cgroup" {print $2, $4}' /proc/self/mounts)
mount -t tmpfs -o mode=755,size=1m pyc-v1view /sys/fs/cgroup
echo "$hierarchies" | while read -r point options; do
  [ -n "$point" ] || continue
  mkdir -p "$point"
  mount -t cgroup -o "$options" cgroup "$point"
done
exec "$@"
