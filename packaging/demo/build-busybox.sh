#!/usr/bin/env bash
# build-busybox.sh OCI_DIR - the examples' image: Debian's static busybox with its applet
# links, a minimal /etc, built with `pycontainers image build` into the OCI layout OCI_DIR
# (tag busybox). Reproducible: the same busybox gives the same digest. BUSYBOX_VARIANT=x adds
# a label (a different image from the same files, for update tests).
set -euo pipefail
out=${1:?usage: build-busybox.sh OCI_DIR}
here=$(cd "$(dirname "$0")/../.." && pwd)
py=${PYCONTAINERS:-$here/.venv/bin/pycontainers}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/root" \
  "$root/var/www" "$root/home"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$root/$(dirname "$applet")"
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nwww:x:33:33:www:/var/www:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nwww:x:33:\nnogroup:x:65534:\n' > "$root/etc/group"
echo "hello from the pycontainers busybox image" > "$root/var/www/index.html"
"$py" image build -t "oci:$out:busybox" --cmd '["sh"]' \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --label org.opencontainers.image.title=busybox \
  ${BUSYBOX_VARIANT:+--label "org.pycontainers.variant=$BUSYBOX_VARIANT"} "$root" >/dev/null
echo "built oci:$out:busybox"
