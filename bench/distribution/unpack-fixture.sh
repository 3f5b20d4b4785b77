#!/bin/sh
# unpack-fixture.sh OUT_DIR - build the ~300 MB three-layer "big" image of the issue into
# OUT_DIR/oci (an OCI layout), with umoci and GNU tar only, so no project code shapes it:
#   layer 1: 4 x 50 MiB random files
#   layer 2: 20,000 small random files in 20 directories (1..8 KiB each, ~82 MB)
#   layer 3: whiteouts (a 50 MiB file, two small files, a directory), an opaque
#            directory hiding 1,000 lower files, 10 new small files and a 16 MiB file
# Run as root (umoci keeps owners). Reuses OUT_DIR/oci if it is already complete.
set -eu
OUT=${1:?usage: unpack-fixture.sh OUT_DIR}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
OCI="$OUT/oci"; TMP="$OUT/build-tmp"
if [ -f "$OUT/.complete" ]; then exit 0; fi
rm -rf "$OCI" "$TMP"; mkdir -p "$TMP"
umoci init --layout "$OCI"
umoci new --image "$OCI:big"
umoci config --image "$OCI:big" --os linux --architecture amd64 --config.cmd /bin/sh
umoci unpack --image "$OCI:big" "$TMP/big" >/dev/null
R="$TMP/big/rootfs"
mkdir -p "$R/big"
for i in 1 2 3 4; do head -c $((50*1024*1024)) /dev/urandom > "$R/big/file$i.bin"; done
umoci repack --refresh-bundle --image "$OCI:big" --history.created_by "layer1: 4x50MiB random" "$TMP/big" >/dev/null
k=0
while [ $k -lt 20 ]; do
  d=$(printf '%s/smalls/d%02d' "$R" $k); mkdir -p "$d"
  sz=$(( (k % 8 + 1) * 1024 ))
  head -c $((sz * 1000)) /dev/urandom | (cd "$d" && split -b $sz -a 4 -d - f)
  k=$((k+1))
done
umoci repack --image "$OCI:big" --history.created_by "layer2: 20000 small files" "$TMP/big" >/dev/null
L3="$TMP/layer3"; mkdir -p "$L3/big" "$L3/smalls/d07" "$L3/smalls/d03" "$L3/extra"
: > "$L3/big/.wh.file3.bin"
: > "$L3/smalls/d03/.wh.f0000"
: > "$L3/smalls/d03/.wh.f0001"
: > "$L3/smalls/.wh.d19"
: > "$L3/smalls/d07/.wh..wh..opq"
for i in 0 1 2 3 4 5 6 7 8 9; do head -c 4096 /dev/urandom > "$L3/smalls/d07/new$i"; done
head -c $((16*1024*1024)) /dev/urandom > "$L3/extra/new16m.bin"
tar -C "$L3" --numeric-owner --owner=0 --group=0 --sort=name -cf "$TMP/layer3.tar" big smalls extra
umoci raw add-layer --image "$OCI:big" --history.created_by "layer3: whiteouts+opaque" "$TMP/layer3.tar"
rm -rf "$TMP"
touch "$OUT/.complete"
