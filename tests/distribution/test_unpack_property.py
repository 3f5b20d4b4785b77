"""Property: random tar streams never change anything outside the root, and fail only as
``LayerError``.

Entries are drawn from a small alphabet that is dense in trouble (``..``, absolute paths,
whiteouts, opaque markers, symlinks to ``..`` and to the host path of a directory beside
the root, hard links through them), applied as one or two layers in either mode with
either resolver; a second property flips bytes of a valid stream.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycontainers.distribution.layer_errors import LayerError
from pycontainers.distribution.saferoot import openat2_works
from pycontainers.distribution.unpack import ApplyOptions, Mode, UnpackLimits, apply_layer

COMPONENTS = ["a", "b", "c", "..", ".", "", ".wh.a", ".wh.b", ".wh..wh..opq", ".wh..", "OUT"]
KINDS = ["file", "dir", "symlink", "hardlink", "chardev", "fifo"]
_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "chardev": tarfile.CHRTYPE,
    "fifo": tarfile.FIFOTYPE,
}
OPENAT2 = openat2_works()

paths = st.builds(
    lambda lead, parts: lead + "/".join(parts),
    st.sampled_from(["", "", "", "/", "./"]),
    st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=4),
)
entries = st.tuples(
    paths,
    st.sampled_from(KINDS),
    paths,
    st.sampled_from([0o644, 0o755, 0o4755, 0o000, 0o777]),
    st.binary(max_size=64),
)
layers = st.lists(st.lists(entries, max_size=8), min_size=1, max_size=2)


def build_tar(layer: list[tuple[str, str, str, int, bytes]], outside: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, link, mode, data in layer:
            info = tarfile.TarInfo(name.replace("OUT", str(outside).lstrip("/")))
            info.type = _TYPES[kind]
            info.mode = mode
            info.linkname = link.replace("OUT", str(outside))
            info.size = len(data) if kind == "file" else 0
            tar.addfile(info, io.BytesIO(data) if kind == "file" else None)
    return buf.getvalue()


def snapshot(base: Path) -> dict[str, tuple[int, int, str]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            s = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(s.st_mode) else ""
            out[str(p)] = (s.st_mode, s.st_nlink, digest)
    return out


def run(datas: list[bytes], root: Path, mode: Mode, use_openat2: bool) -> None:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for data in datas:
            apply_layer(
                fd,
                [data],
                ApplyOptions(mode=mode, use_openat2=use_openat2),
                limits=UnpackLimits(max_bytes=1 << 20, max_entries=100),
            )
    except LayerError:
        pass
    finally:
        os.close(fd)


def make_box(tmp: str) -> tuple[Path, Path]:
    base = Path(tmp)
    outside = base / "outside"
    (outside / "a").mkdir(parents=True)
    (outside / "b").write_bytes(b"secret")
    (outside / "a" / "c").write_bytes(b"inner")
    root = base / "root"
    root.mkdir()
    return root, outside


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers, st.sampled_from(list(Mode)), st.booleans())
def test_random_layers_never_write_outside(
    drawn: list[list[tuple[str, str, str, int, bytes]]], mode: Mode, use_openat2: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, outside = make_box(tmp)
        before = snapshot(outside)
        run([build_tar(layer, outside) for layer in drawn], root, mode, use_openat2 and OPENAT2)
        assert snapshot(outside) == before
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["outside", "root"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_streams_fail_only_as_layer_errors(flips: list[tuple[int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, outside = make_box(tmp)
        good = build_tar(
            [("a/b", "file", "", 0o644, b"x" * 700), ("a/l", "symlink", "../..", 0o777, b"")],
            outside,
        )
        data = bytearray(good)
        for pos, value in flips:
            data[pos % len(data)] = value
        before = snapshot(outside)
        run([bytes(data)], root, Mode.FLATTEN, OPENAT2)
        assert snapshot(outside) == before


PAX_KEYS = [
    "path",
    "linkpath",
    "size",
    "uid",
    "gid",
    "mtime",
    "SCHILY.xattr.user.x",
    "SCHILY.xattr.trusted.overlay.redirect",
    "LIBARCHIVE.xattr.user.y",
    "GNU.sparse.major",
    "comment",
]
pax_values = st.one_of(
    st.sampled_from(["../x", "/etc/passwd", "a/../../b", "-1", "1e9", "99999999999", ""]),
    st.text(max_size=12),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from(PAX_KEYS), pax_values, max_size=4),
            st.sampled_from(KINDS),
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(list(Mode)),
)
def test_random_pax_records_fail_only_as_layer_errors(
    drawn: list[tuple[dict[str, str], str]], mode: Mode
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, outside = make_box(tmp)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for i, (pax, kind) in enumerate(drawn):
                info = tarfile.TarInfo(f"e{i}")
                info.type = _TYPES[kind]
                info.linkname = "e0"
                info.pax_headers = pax
                data = b"d" * 10 if kind == "file" else b""
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data) if data else None)
        before = snapshot(outside)
        run([buf.getvalue()], root, mode, OPENAT2)
        assert snapshot(outside) == before
