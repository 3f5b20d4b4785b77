"""Oracle: our flattened unpack, and an overlay mount of our layer dirs, equal ``umoci unpack``.

For every fixture image (``layered`` has whiteouts of a file and a directory, an opaque
directory and a directory re-created above a whiteout) the trees must agree on paths,
types, modes (setuid/setgid included), owners, link targets, content hashes, mtimes of
non-directories and which paths are hard links of each other.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.images import FixtureImages
from pycontainers.distribution.layerstore import (
    LayerStore,
    lowerdir_option,
    resolve_image,
    unpack_flat,
)
from pycontainers.distribution.store import ContentStore

TAGS = ("busybox", "busybox-arm64", "multi", "layered")
# umoci 0.4 cannot unpack an index; "multi" resolves to the amd64 busybox manifest.
UMOCI_TAG = {"multi": "busybox"}


def tree(root: Path) -> dict[str, Any]:
    """What the issue compares, keyed by path; hard links grouped by inode."""
    entries: dict[str, tuple[Any, ...]] = {}
    inodes: dict[int, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            kind = stat.S_IFMT(st.st_mode)
            extra: Any = None
            if stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(p.read_bytes()).hexdigest()
                inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                extra = st.st_rdev
            mtime = None if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode) else st.st_mtime_ns
            entries[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, extra, mtime)
    links = sorted(sorted(group) for group in inodes.values() if len(group) > 1)
    return {"entries": entries, "hardlinks": links}


@pytest.fixture(scope="module")
def store(images: FixtureImages) -> ContentStore:
    return ContentStore(images.layout)


@pytest.fixture(scope="module")
def umoci_trees(
    images: FixtureImages, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    out = {}
    base = tmp_path_factory.mktemp("umoci")
    for tag in {UMOCI_TAG.get(t, t) for t in TAGS}:
        subprocess.run(
            ["umoci", "unpack", "--image", f"{images.layout}:{tag}", str(base / tag)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        out[tag] = tree(base / tag / "rootfs")
    return out


@pytest.mark.root
@pytest.mark.parametrize("tag", TAGS)
def test_flattened_unpack_equals_umoci(
    tag: str, store: ContentStore, umoci_trees: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    image = resolve_image(store, tag)
    stats = unpack_flat(store, image, tmp_path / "rootfs")
    assert stats.entries > 0
    ours = tree(tmp_path / "rootfs")
    theirs = umoci_trees[UMOCI_TAG.get(tag, tag)]
    assert ours == theirs


@pytest.mark.root
def test_layered_fixture_exercises_whiteouts_and_modes(tmp_path: Path, store: ContentStore) -> None:
    """Guards the oracle: the fixture really has what the comparison is meant to cover."""
    unpack_flat(store, resolve_image(store, "layered"), tmp_path / "r")
    r = tmp_path / "r"
    assert not (r / "data" / "a.txt").exists()
    assert sorted(os.listdir(r / "opaque")) == ["new1"]
    assert sorted(os.listdir(r / "gone-dir")) == ["back.txt"]
    assert (r / "owned" / "setuid").stat().st_mode & stat.S_ISUID
    assert (r / "owned" / "setgid").stat().st_mode & stat.S_ISGID
    assert (r / "owned" / "by-1000").stat().st_uid == 1000
    assert (r / "data" / "b.txt").stat().st_ino == (r / "data" / "b-hardlink.txt").stat().st_ino


@pytest.fixture
def overlay_mount(tmp_path: Path) -> Iterator[Any]:
    mounted: list[Path] = []

    def mount(lower: str) -> Path:
        for d in ("upper", "work", "merged"):
            (tmp_path / d).mkdir()
        opts = f"lowerdir={lower},upperdir={tmp_path / 'upper'},workdir={tmp_path / 'work'}"
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, str(tmp_path / "merged")],
            check=True,
        )
        mounted.append(tmp_path / "merged")
        return tmp_path / "merged"

    try:
        yield mount
    finally:
        for m in mounted:
            subprocess.run(["umount", str(m)], check=True)


@pytest.mark.root
@pytest.mark.parametrize("tag", TAGS)
def test_overlay_of_layer_dirs_equals_umoci(
    tag: str,
    store: ContentStore,
    umoci_trees: dict[str, dict[str, Any]],
    tmp_path: Path,
    overlay_mount: Any,
) -> None:
    image = resolve_image(store, tag)
    layers = LayerStore(tmp_path / "layers")
    dirs = layers.ensure_image(store, image)
    assert [d.name for d in dirs] == [d.hex for d in image.config.diff_ids]
    merged = overlay_mount(lowerdir_option(dirs))
    assert tree(merged) == umoci_trees[UMOCI_TAG.get(tag, tag)]


@pytest.mark.root
def test_layer_dirs_hold_overlay_whiteouts(store: ContentStore, tmp_path: Path) -> None:
    image = resolve_image(store, "layered")
    dirs = LayerStore(tmp_path / "layers").ensure_image(store, image)
    second = dirs[1]
    for whiteout in (second / "data" / "a.txt", second / "gone-dir"):
        st = whiteout.lstat()
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and (st.st_uid, st.st_gid) == (0, 0)
    assert os.getxattr(second / "opaque", "trusted.overlay.opaque") == b"y"
    assert not (second / "opaque" / ".wh..wh..opq").exists()


@pytest.mark.root
@pytest.mark.parametrize("fmt", ["zstd", "gzip"])
def test_layers_recompressed_by_skopeo_unpack_the_same(
    fmt: str,
    images: FixtureImages,
    umoci_trees: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    """zstd layers written by containers/image (skopeo), an independent encoder."""
    out = tmp_path / "oci"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "-q",
            "--dest-compress",
            "--dest-compress-format",
            fmt,
            images.ref("layered"),
            f"oci:{out}:layered",
        ],
        check=True,
    )
    store = ContentStore(out)
    image = resolve_image(store, "layered")
    assert {d.media_type for d in image.manifest.layers} == {
        f"application/vnd.oci.image.layer.v1.tar+{fmt}"
    }
    unpack_flat(store, image, tmp_path / "rootfs")
    assert tree(tmp_path / "rootfs") == umoci_trees["layered"]
