#!/bin/sh
# build-images.sh OUT_DIR - build the test fixture images without Docker, into an OCI layout,
# with real tools (umoci, skopeo, GNU tar) so they are an independent oracle for our code.
# Tags in OUT_DIR/oci:
#   busybox        /bin/busybox (Debian's busybox-static) + applet symlinks, Cmd ["/bin/sh"]
#   busybox-arm64  the same layer, config says arm64 (member of the multi-arch index)
#   multi          OCI image index: busybox (linux/amd64) + busybox-arm64 (linux/arm64)
#   layered        three layers: files, symlinks, a hardlink, setuid/setgid modes, owners;
#                  then whiteouts (file and directory) and an opaque directory; then more files
set -eu
OUT=${1:?usage: build-images.sh OUT_DIR}
BUSYBOX=${BUSYBOX:-/bin/busybox}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
OCI="$OUT/oci"; TMP="$OUT/build-tmp"
rm -rf "$OCI" "$TMP"; mkdir -p "$TMP"
umoci init --layout "$OCI"

# ---- busybox ----
umoci new --image "$OCI:busybox"
umoci unpack --image "$OCI:busybox" "$TMP/bb" >/dev/null
R="$TMP/bb/rootfs"
mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/tmp" "$R/etc" "$R/root" "$R/proc" "$R/sys" "$R/dev"
chmod 1777 "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"; chmod 0755 "$R/bin/busybox"
"$BUSYBOX" --list-full | while read -r p; do
  [ "$p" = bin/busybox ] && continue
  mkdir -p "$R/$(dirname "$p")"; ln -sf /bin/busybox "$R/$p"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
umoci repack --image "$OCI:busybox" "$TMP/bb" >/dev/null
umoci config --image "$OCI:busybox" --os linux --architecture amd64 \
  --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin --config.cmd /bin/sh --config.workingdir /
umoci config --image "$OCI:busybox" --tag busybox-arm64 --architecture arm64

# ---- layered ----
umoci new --image "$OCI:layered"
umoci config --image "$OCI:layered" --os linux --architecture amd64 --config.cmd /bin/sh
umoci unpack --image "$OCI:layered" "$TMP/ly" >/dev/null
R="$TMP/ly/rootfs"
mkdir -p "$R/data/sub" "$R/gone-dir/inner" "$R/opaque/old" "$R/etc" "$R/owned"
echo alpha > "$R/data/a.txt"; echo beta > "$R/data/b.txt"; echo keep > "$R/data/sub/keep.txt"
echo x > "$R/gone-dir/inner/x"; echo old1 > "$R/opaque/old1"; echo old2 > "$R/opaque/old/old2"
ln "$R/data/b.txt" "$R/data/b-hardlink.txt"
ln -s a.txt "$R/data/a-link"; ln -s /etc/missing "$R/data/dangling"
echo conf > "$R/etc/app.conf"
printf '#!/bin/sh\necho su\n' > "$R/owned/setuid"; chmod 4755 "$R/owned/setuid"
printf 'g\n' > "$R/owned/setgid"; chmod 2750 "$R/owned/setgid"
echo u > "$R/owned/by-1000"; chown 1000:1000 "$R/owned/by-1000"
chmod 0700 "$R/owned"
umoci repack --image "$OCI:layered" --history.created_by "layer1: files, links, modes" "$TMP/ly" >/dev/null
# layer 2 by hand: umoci repack never emits an opaque marker
L2="$TMP/l2"; mkdir -p "$L2/data/sub" "$L2/opaque"
: > "$L2/data/.wh.a.txt"
: > "$L2/.wh.gone-dir"
: > "$L2/opaque/.wh..wh..opq"
echo new > "$L2/opaque/new1"
echo changed > "$L2/data/sub/keep.txt"
tar -C "$L2" --numeric-owner --owner=0 --group=0 --sort=name --mtime=@1700000000 -cf "$TMP/l2.tar" .wh.gone-dir data opaque
umoci raw add-layer --image "$OCI:layered" --history.created_by "layer2: whiteouts + opaque" "$TMP/l2.tar"
# layer 3 by hand: a file re-created where a whiteout was, and a new top-level dir
L3="$TMP/l3"; mkdir -p "$L3/gone-dir" "$L3/extra"
echo back > "$L3/gone-dir/back.txt"; echo e > "$L3/extra/e.txt"
tar -C "$L3" --numeric-owner --owner=0 --group=0 --sort=name --mtime=@1700000000 -cf "$TMP/l3.tar" extra gone-dir
umoci raw add-layer --image "$OCI:layered" --history.created_by "layer3: recreate + extra" "$TMP/l3.tar"

# ---- multi-arch index (hand-written OCI index blob) ----
mdesc() {
  skopeo inspect --raw "oci:$OCI:$1" > "$TMP/m.json"
  echo "sha256:$(sha256sum < "$TMP/m.json" | cut -d' ' -f1) $(wc -c < "$TMP/m.json")"
}
set -- $(mdesc busybox); D1=$1; S1=$2
set -- $(mdesc busybox-arm64); D2=$1; S2=$2
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"arm64","os":"linux"}}]}' \
  "$D1" "$S1" "$D2" "$S2" > "$TMP/index.blob"
H=$(sha256sum < "$TMP/index.blob" | cut -d' ' -f1); SZ=$(wc -c < "$TMP/index.blob")
cp "$TMP/index.blob" "$OCI/blobs/sha256/$H"
sed -i "s|\"manifests\":\[|\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"sha256:$H\",\"size\":$SZ,\"annotations\":{\"org.opencontainers.image.ref.name\":\"multi\"}},|" "$OCI/index.json"
rm -rf "$TMP"
umoci ls --layout "$OCI"
