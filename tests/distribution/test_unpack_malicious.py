"""Crafted hostile layers: each is refused or contained, and nothing outside the root changes.

The corpus is generated here with ``tarfile`` (which writes whatever names it is given),
into ``tmp_path/corpus`` so a failing case can be inspected. Every case runs with the
kernel's ``openat2(RESOLVE_IN_ROOT)`` and with the component-by-component emulation.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.layer_errors import (
    DiffIDMismatch,
    LayerError,
    LayerTooLarge,
    MalformedLayer,
    UnsafeEntry,
)
from pycontainers.distribution.layerstore import LayerStore
from pycontainers.distribution.saferoot import openat2_works
from pycontainers.distribution.unpack import ApplyOptions, Mode, UnpackLimits, apply_layer

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class E:
    """One crafted entry: kind is file, dir, symlink, hardlink, chardev or fifo."""

    name: str
    kind: str = "file"
    data: bytes = b"x"
    link: str = ""
    mode: int = 0o644


def tar_of(entries: list[E]) -> bytes:
    buf = io.BytesIO()
    kinds = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "chardev": tarfile.CHRTYPE,
        "fifo": tarfile.FIFOTYPE,
    }
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = kinds[e.kind]
            info.mode = e.mode
            info.linkname = e.link
            info.mtime = 1_700_000_000
            if e.kind == "file":
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


@dataclass
class Box:
    """``root`` is the unpack target; ``outside`` is a sibling the layer must not touch."""

    base: Path
    root: Path
    outside: Path

    def snapshot(self) -> dict[str, tuple[int, int, int, str]]:
        out = {}
        for dirpath, dirnames, filenames in os.walk(self.base):
            here = Path(dirpath)
            if here == self.root:
                dirnames.clear()
                continue
            for name in dirnames + filenames:
                p = here / name
                if p == self.root:
                    continue
                st = p.lstat()
                digest = ""
                if stat.S_ISREG(st.st_mode):
                    digest = hashlib.sha256(p.read_bytes()).hexdigest()
                elif stat.S_ISLNK(st.st_mode):
                    digest = os.readlink(p)
                out[str(p.relative_to(self.base))] = (
                    st.st_mode,
                    st.st_nlink,
                    st.st_mtime_ns,
                    digest,
                )
        return out


@pytest.fixture(params=[True, False], ids=["openat2", "emulated"])
def resolver(request: pytest.FixtureRequest) -> bool:
    if request.param and not openat2_works():
        pytest.skip("openat2 is not available on this kernel")
    return bool(request.param)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    base = tmp_path / "box"
    (base / "outside" / "dir").mkdir(parents=True)
    (base / "outside" / "secret").write_bytes(b"secret\n")
    (base / "outside" / "dir" / "inner").write_bytes(b"inner\n")
    (base / "root").mkdir()
    yield Box(base, base / "root", base / "outside")


def apply(
    box: Box, layers: list[bytes], mode: Mode, use_openat2: bool, limits: UnpackLimits | None = None
) -> None:
    fd = os.open(box.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for data in layers:
            apply_layer(
                fd,
                [data],
                ApplyOptions(mode=mode, use_openat2=use_openat2),
                limits=limits or UnpackLimits(),
            )
    finally:
        os.close(fd)


def save_corpus(tmp_path: Path, name: str, layers: list[bytes]) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    for i, data in enumerate(layers):
        (corpus / f"{name}.{i}.tar").write_bytes(data)


# Cases that must be refused with UnsafeEntry: (id, layers as lists of entries).
REFUSED: list[tuple[str, list[list[E]]]] = [
    ("absolute-path", [[E("/abs-file")]]),
    ("dotdot", [[E("../escaped")]]),
    ("dotdot-inside", [[E("a/../../escaped")]]),
    ("dotdot-dir", [[E("../outside/newdir", "dir")]]),
    ("hardlink-dotdot", [[E("hl", "hardlink", link="../outside/secret")]]),
    ("hardlink-absolute", [[E("hl", "hardlink", link="/etc/passwd")]]),
    ("whiteout-dotdot", [[E("../outside/.wh.secret")]]),
    ("whiteout-of-dotdot", [[E("sub/.wh..", "file")]]),
    ("opaque-dotdot", [[E("../outside/dir/.wh..wh..opq")]]),
]

# Cases whose writes must stay inside the root (a symlink is followed within the root,
# as runc and umoci resolve it), or be refused; never anything outside.
CONTAINED: list[tuple[str, list[list[E]]]] = [
    ("symlink-parent-relative", [[E("evil", "symlink", link="../.."), E("evil/escaped")]]),
    ("symlink-parent-absolute", [[E("evil", "symlink", link="/"), E("evil/escaped")]]),
    (
        "symlink-parent-earlier-layer",
        [[E("evil", "symlink", link="../../outside")], [E("evil/secret", data=b"pwned")]],
    ),
    ("symlink-then-file-over-it", [[E("f", "symlink", link="../outside/secret"), E("f")]]),
    (
        "symlink-then-dir-over-it",
        [[E("d", "symlink", link="../outside/dir"), E("d", "dir", mode=0o777)]],
    ),
    (
        "hardlink-via-symlink",
        [[E("s", "symlink", link="../outside"), E("h", "hardlink", link="s/secret")]],
    ),
    ("whiteout-via-symlink", [[E("s", "symlink", link="../outside")], [E("s/.wh.secret")]]),
    ("opaque-via-symlink", [[E("s", "symlink", link="../outside/dir")], [E("s/.wh..wh..opq")]]),
    (
        "chain-of-symlinks",
        [[E("a", "symlink", link="b"), E("b", "symlink", link="../../outside"), E("a/x")]],
    ),
    ("symlink-loop", [[E("l1", "symlink", link="l2"), E("l2", "symlink", link="l1"), E("l1/x")]]),
    (
        "dir-symlink-swap",
        [[E("d", "dir"), E("d/f"), E("d", "symlink", link="../outside"), E("d/g")]],
    ),
]


@pytest.mark.parametrize("mode", [Mode.FLATTEN, Mode.OVERLAY], ids=["flatten", "overlay"])
@pytest.mark.parametrize(("case", "layers"), REFUSED, ids=[c for c, _ in REFUSED])
def test_hostile_entry_is_refused(
    case: str, layers: list[list[E]], mode: Mode, box: Box, resolver: bool, tmp_path: Path
) -> None:
    datas = [tar_of(layer) for layer in layers]
    save_corpus(tmp_path, case, datas)
    before = box.snapshot()
    with pytest.raises(UnsafeEntry) as err:
        apply(box, datas, mode, resolver)
    assert "entry" in str(err.value)
    assert box.snapshot() == before


@pytest.mark.parametrize("mode", [Mode.FLATTEN, Mode.OVERLAY], ids=["flatten", "overlay"])
@pytest.mark.parametrize(("case", "layers"), CONTAINED, ids=[c for c, _ in CONTAINED])
def test_symlink_tricks_stay_inside_the_root(
    case: str, layers: list[list[E]], mode: Mode, box: Box, resolver: bool, tmp_path: Path
) -> None:
    datas = [tar_of(layer) for layer in layers]
    save_corpus(tmp_path, case, datas)
    before = box.snapshot()
    # Refusing is fine too (a dangling in-root target, a loop); writing outside is not.
    with contextlib.suppress(LayerError):
        apply(box, datas, mode, resolver)
    assert box.snapshot() == before


@pytest.mark.parametrize("use_openat2", [True, False], ids=["openat2", "emulated"])
def test_symlink_parent_redirects_into_the_root(box: Box, use_openat2: bool) -> None:
    """``evil -> /`` then ``evil/escaped``: the file lands at ROOT/escaped, as in umoci."""
    if use_openat2 and not openat2_works():
        pytest.skip("openat2 is not available on this kernel")
    layer = tar_of([E("evil", "symlink", link="/"), E("evil/escaped", data=b"here")])
    apply(box, [layer], Mode.FLATTEN, use_openat2)
    assert (box.root / "escaped").read_bytes() == b"here"
    assert not (box.base / "escaped").exists()


def test_hardlink_to_outside_leaves_link_count(box: Box) -> None:
    layer = tar_of([E("s", "symlink", link=str(box.outside)), E("h", "hardlink", link="s/secret")])
    with pytest.raises(LayerError, match="hard link target"):
        apply(box, [layer], Mode.FLATTEN, openat2_works())
    assert (box.outside / "secret").stat().st_nlink == 1


def test_overlay_xattrs_from_the_layer_are_ignored(box: Box) -> None:
    """A layer may not set overlay's own xattrs (redirect, metacopy, opaque) itself."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("d")
        info.type = tarfile.DIRTYPE
        info.pax_headers = {
            "SCHILY.xattr.trusted.overlay.redirect": "/etc",
            "SCHILY.xattr.user.ok": "1",
        }
        tar.addfile(info)
    apply(box, [buf.getvalue()], Mode.OVERLAY, True)
    assert os.getxattr(box.root / "d", "user.ok") == b"1"
    assert "trusted.overlay.redirect" not in os.listxattr(box.root / "d")


def test_size_limit_stops_a_decompression_bomb(tmp_path: Path) -> None:
    bomb = gzip.compress(tar_of([E("zeros", data=bytes(64 << 20))]), 9)
    assert len(bomb) < 1 << 20
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "bomb.tar.gz").write_bytes(bomb)
    store = LayerStore(tmp_path / "layers", limits=UnpackLimits(max_bytes=8 << 20))
    diff_id = Digest.of_bytes(gzip.decompress(bomb))
    with pytest.raises(LayerTooLarge, match="exceeds the limit of 8388608 bytes"):
        store.ensure(io.BytesIO(bomb), GZIP, diff_id)
    assert [p.name for p in (tmp_path / "layers").iterdir()] == [".lock"]


def test_entry_limit_stops_a_million_empty_files(tmp_path: Path) -> None:
    layer = tar_of([E(f"f{i}", data=b"") for i in range(200)])
    store = LayerStore(tmp_path / "layers", limits=UnpackLimits(max_entries=100))
    with pytest.raises(LayerTooLarge, match="more than the limit of 100 entries"):
        store.ensure(
            io.BytesIO(layer), "application/vnd.oci.image.layer.v1.tar", Digest.of_bytes(layer)
        )
    assert [p.name for p in (tmp_path / "layers").iterdir()] == [".lock"]


@pytest.mark.parametrize(
    ("case", "mangle", "error"),
    [
        ("truncated", lambda b: b[:700], MalformedLayer),
        ("bad-checksum", lambda b: b[:148] + b"0000000\0" + b[156:], MalformedLayer),
        ("no-end-of-archive", lambda b: b[:1024], MalformedLayer),
        ("sparse-type", lambda b: b[:156] + b"S" + b[157:], MalformedLayer),
    ],
)
def test_malformed_tar_is_refused_and_leaves_nothing(
    case: str, mangle: Callable[[bytes], bytes], error: type[Exception], tmp_path: Path
) -> None:
    good = tar_of([E("a", data=b"a" * 600), E("b")])
    bad = mangle(good)
    store = LayerStore(tmp_path / "layers")
    with pytest.raises(error):
        store.ensure(
            io.BytesIO(bad), "application/vnd.oci.image.layer.v1.tar", Digest.of_bytes(bad)
        )
    assert [p.name for p in (tmp_path / "layers").iterdir()] == [".lock"]


def test_not_gzip_is_refused(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    with pytest.raises(MalformedLayer, match="not a valid gzip stream"):
        store.ensure(io.BytesIO(b"plain text, not gzip" * 10), GZIP, Digest.of_bytes(b""))
    assert [p.name for p in (tmp_path / "layers").iterdir()] == [".lock"]


def test_wrong_diff_id_leaves_no_layer_dir(tmp_path: Path) -> None:
    layer = tar_of([E("a")])
    wrong = Digest.of_bytes(b"something else")
    store = LayerStore(tmp_path / "layers")
    with pytest.raises(DiffIDMismatch, match=f"the config says {wrong}"):
        store.ensure(io.BytesIO(layer), "application/vnd.oci.image.layer.v1.tar", wrong)
    assert not store.has(wrong)
    assert [p.name for p in (tmp_path / "layers").iterdir()] == [".lock"]


@pytest.mark.parametrize("mode", [Mode.FLATTEN, Mode.OVERLAY], ids=["flatten", "overlay"])
def test_aufs_bookkeeping_is_dropped(mode: Mode, box: Box) -> None:
    """Old Docker layers carry aufs metadata; Docker drops it, so do we."""
    layer = tar_of(
        [
            E(".wh..wh.plnk", "dir"),
            E(".wh..wh.plnk/1234.5678"),
            E(".wh..wh.aufs"),
            E("d", "dir"),
            E("d/.wh..wh.orph"),
            E("d/kept"),
        ]
    )
    fd = os.open(box.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        stats = apply_layer(fd, [layer], ApplyOptions(mode=mode))
    finally:
        os.close(fd)
    assert sorted(p.name for p in box.root.rglob("*")) == ["d", "kept"]
    assert stats.ignored == 4 and stats.whiteouts == 0
