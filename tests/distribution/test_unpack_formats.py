"""Tar dialects: archives written by GNU tar in gnu, ustar and posix (pax) formats unpack to
the same tree as GNU tar extracts them (the oracle), long names, long link targets,
base-256 ids, xattrs, hard links, fifos and devices included.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pycontainers.distribution.unpack import ApplyOptions, Mode, apply_layer

LONG = "d" * 60 + "/" + "e" * 70 + "/" + "f" * 90  # > 100 and > 155+100 split points


def source_tree(src: Path, *, big_ids: bool) -> None:
    deep = src / LONG
    deep.parent.mkdir(parents=True)
    deep.write_bytes(b"deep\n" * 1000)
    (src / "plain").write_bytes(b"")
    os.link(deep, src / "hard-to-deep")
    (src / "long-link").symlink_to("../" * 40 + LONG)
    os.mkfifo(src / "fifo", 0o640)
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (src / "suid").write_bytes(b"#!/bin/sh\n")
    (src / "suid").chmod(0o6755)
    os.setxattr(src / "plain", "user.note", b"hello")
    if big_ids:  # beyond 7 octal digits: GNU tar writes base-256
        os.chown(src / "plain", 3_000_000, 3_000_001)
    for p in (src / "plain", src / "suid", deep):
        os.utime(p, (1_600_000_000, 1_600_000_000))


def tree(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            body: Any = None
            if stat.S_ISREG(st.st_mode):
                body = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_nlink, st.st_mtime_ns)
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode):
                body = st.st_rdev
            xattrs = (
                {}
                if stat.S_ISLNK(st.st_mode)
                else {k: os.getxattr(p, k) for k in os.listxattr(p) if k.startswith("user.")}
            )
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, body, xattrs)
    return out


@pytest.mark.root
@pytest.mark.parametrize("fmt", ["gnu", "ustar", "posix"])
def test_gnu_tar_dialects_unpack_like_gnu_tar(fmt: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    source_tree(src, big_ids=fmt == "gnu")
    archive = tmp_path / "layer.tar"
    create = ["tar", "-C", str(src), f"--format={fmt}", "--numeric-owner", "-cf", str(archive)]
    if fmt == "posix":
        create.append("--xattrs")
    if fmt == "ustar":  # ustar has no long names or links beyond its fields: leave them out
        names = ["plain", "fifo", "null", "suid", "d" * 60]
        (src / "long-link").unlink()
        (src / "hard-to-deep").unlink()
        (src / LONG).rename(src / ("d" * 60) / "short")
        subprocess.run(["rm", "-rf", str(src / ("d" * 60) / ("e" * 70))], check=True)
    else:
        names = sorted(os.listdir(src))
    subprocess.run([*create, *names], check=True)

    oracle = tmp_path / "oracle"
    oracle.mkdir()
    extract = ["tar", "-C", str(oracle), "--numeric-owner", "--same-permissions", "-xf"]
    if fmt == "posix":
        extract = [*extract[:-1], "--xattrs", "--xattrs-include=user.*", "-xf"]
    subprocess.run([*extract, str(archive)], check=True)

    ours = tmp_path / "ours"
    ours.mkdir()
    fd = os.open(ours, os.O_RDONLY | os.O_DIRECTORY)
    try:
        apply_layer(fd, [archive.read_bytes()], ApplyOptions(mode=Mode.FLATTEN))
    finally:
        os.close(fd)
    expected = tree(oracle)
    assert tree(ours) == expected
    if fmt == "gnu":
        assert expected["plain"][1:3] == (3_000_000, 3_000_001)
    if fmt == "posix":
        assert expected["plain"][4] == {"user.note": b"hello"}
