"""Rootless: an unprivileged user unpacks (flattened and into layer dirs with
``user.overlay.opaque``), and a ``userxattr`` overlay mount in a user namespace of those
layer dirs shows the same tree as the flattened unpack.

Runs the unpack as ``nobody`` through setpriv (so the test itself needs root to switch),
in a directory outside pytest's root-only tmp tree; the overlay lives in the private
mount namespace of ``unshare -Urm`` and vanishes with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.images import FixtureImages

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

UNPACK = """
import json, sys
from pathlib import Path
from pycontainers.distribution.store import ContentStore
from pycontainers.distribution.layerstore import (
    LayerStore, lowerdir_option, resolve_image, unpack_flat)
base = Path(sys.argv[1])
store = ContentStore(base / "oci")
image = resolve_image(store, "layered")
stats = unpack_flat(store, image, base / "flat")
dirs = LayerStore(base / "layers", opaque_xattr="user.overlay.opaque").ensure_image(store, image)
print(json.dumps({"lower": lowerdir_option(dirs), "skipped": stats.skipped_devices}))
"""

TREE = """
import hashlib, json, os, stat, sys
from pathlib import Path
root = Path(sys.argv[1])
out = {}
for dirpath, dirnames, filenames in os.walk(root):
    for name in dirnames + filenames:
        p = Path(dirpath) / name
        st = p.lstat()
        body = ""
        if stat.S_ISREG(st.st_mode):
            body = hashlib.sha256(p.read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            body = os.readlink(p)
        out[str(p.relative_to(root))] = [st.st_mode, body]
print(json.dumps(out, sort_keys=True))
"""


@pytest.fixture
def nobody_dir(images: FixtureImages) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="pyc-rootless-"))
    try:
        shutil.copytree(images.layout, base / "oci")
        for dirpath, dirnames, filenames in os.walk(base):
            for name in [".", *dirnames, *filenames]:
                os.lchown(Path(dirpath) / name, NOBODY, NOBODY)
        base.chmod(0o755)
        yield base
    finally:
        shutil.rmtree(base)


@pytest.mark.root
def test_rootless_unpack_and_userxattr_overlay(nobody_dir: Path) -> None:
    python = sys.executable
    done = subprocess.run(
        [*AS_NOBODY, python, "-c", UNPACK, str(nobody_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout)
    assert (nobody_dir / "flat" / "owned" / "by-1000").stat().st_uid == NOBODY
    flat = json.loads(
        subprocess.run(
            [python, "-c", TREE, str(nobody_dir / "flat")], check=True, capture_output=True
        ).stdout
    )
    merged = nobody_dir / "merged"
    merged.mkdir()
    os.chown(merged, NOBODY, NOBODY)
    lower = result["lower"]
    script = (
        f"mount -t overlay overlay -o userxattr,lowerdir={lower} {merged} && "
        f"exec {python} -c '{TREE}' {merged}"
    )
    shown = subprocess.run(
        [*AS_NOBODY, "unshare", "-Urm", "sh", "-c", script],
        check=True,
        capture_output=True,
    )
    assert json.loads(shown.stdout) == flat
    assert "opaque/new1" in flat and "gone-dir/back.txt" in flat
    assert "opaque/old1" not in flat and "gone-dir/inner" not in flat
    assert result["skipped"] == 0


XATTR_LAYER = """
import io, json, os, sys, tarfile
from pycontainers.distribution.unpack import ApplyOptions, Mode, apply_layer
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
    info = tarfile.TarInfo("f")
    info.pax_headers = {"SCHILY.xattr.trusted.label": "x", "SCHILY.xattr.user.note": "ok"}
    tar.addfile(info, io.BytesIO(b""))
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
stats = apply_layer(fd, [buf.getvalue()], ApplyOptions(mode=Mode.FLATTEN))
path = os.path.join(sys.argv[1], "f")
print(json.dumps({"skipped": stats.skipped_xattrs, "xattrs": sorted(os.listxattr(path))}))
"""


@pytest.mark.root
def test_xattrs_an_unprivileged_user_may_not_set_are_skipped(nobody_dir: Path) -> None:
    target = nobody_dir / "x"
    target.mkdir()
    os.chown(target, NOBODY, NOBODY)
    done = subprocess.run(
        [*AS_NOBODY, sys.executable, "-c", XATTR_LAYER, str(target)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(done.stdout) == {"skipped": 1, "xattrs": ["user.note"]}


READ_ONLY_LAYERS = """
import io, json, os, stat, sys, tarfile
from pycontainers.distribution.unpack import ApplyOptions, Mode, apply_layer

def layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, mode in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, mode
            tar.addfile(info, io.BytesIO(b""))
    return buf.getvalue()

D, F = tarfile.DIRTYPE, tarfile.REGTYPE
lower = layer([("ro", D, 0o555), ("ro/old", F, 0o444), ("ro/sub", D, 0o555),
               ("ro/sub/deep", D, 0o500), ("ro/sub/deep/x", F, 0o400), ("ro/keep", F, 0o444)])
upper = layer([("ro/new", F, 0o644), ("ro/.wh.old", F, 0), ("ro/.wh.sub", F, 0)])
root = sys.argv[1]
fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
for data in (lower, upper):
    apply_layer(fd, [data], ApplyOptions(mode=Mode.FLATTEN))
ro = os.path.join(root, "ro")
print(json.dumps({"names": sorted(os.listdir(ro)), "mode": stat.S_IMODE(os.stat(ro).st_mode)}))
"""


@pytest.mark.root
def test_unprivileged_flatten_through_read_only_directories(nobody_dir: Path) -> None:
    """A lower layer's 0555 directory binds an unprivileged owner; the unpack opens it
    for the upper layer (new file, file and subtree whiteouts) and restores its mode."""
    target = nobody_dir / "ro-root"
    target.mkdir()
    os.chown(target, NOBODY, NOBODY)
    done = subprocess.run(
        [*AS_NOBODY, sys.executable, "-c", READ_ONLY_LAYERS, str(target)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"names": ["keep", "new"], "mode": 0o555}
