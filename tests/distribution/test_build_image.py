"""``image build``: reproducible images from directories and tarballs, read back by skopeo
and umoci, and a busybox image from Debian's ``/bin/busybox`` that really runs.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pycontainers.distribution.build import ImageSettings, build_image, source_date_epoch
from pycontainers.distribution.layer_errors import BuildError, UnsafeEntry
from pycontainers.distribution.layerstore import resolve_image, unpack_flat
from pycontainers.distribution.layerstream import Compression
from pycontainers.distribution.store import ContentStore
from pycontainers.reconciler.cli import main

BUSYBOX = Path("/bin/busybox")
SETTINGS = ImageSettings(
    entrypoint=("/bin/sh", "-c"),
    cmd=("echo hello",),
    env=("PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hi"),
    workdir="/root",
    user="0:0",
    labels={"org.example.kind": "test", "b": "2"},
    exposed_ports=("8080", "53/udp"),
    os="linux",
    architecture="amd64",
)


def busybox_tree(dest: Path) -> Path:
    """A minimal busybox rootfs: the binary, its applet symlinks, passwd and group."""
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True)
    for applet in applets.stdout.split():
        if applet == "bin/busybox":
            continue
        link = dest / applet
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to("/bin/busybox")
    (dest / "etc").mkdir()
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\n")
    (dest / "root").mkdir(mode=0o700)
    (dest / "tmp").mkdir()
    (dest / "tmp").chmod(0o1777)
    return dest


@pytest.fixture(scope="module")
def bbroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return busybox_tree(tmp_path_factory.mktemp("bb") / "rootfs")


def app_tree(dest: Path) -> Path:
    (dest / "app" / "sub").mkdir(parents=True)
    (dest / "app" / "run").write_text("#!/bin/sh\necho app\n")
    (dest / "app" / "run").chmod(0o4755)
    (dest / "app" / "sub" / "data").write_bytes(b"\0" * 5000)
    os.link(dest / "app" / "sub" / "data", dest / "app" / "data-link")
    (dest / "app" / "rel").symlink_to("sub/data")
    return dest


def test_same_inputs_give_the_same_digests(bbroot: Path, tmp_path: Path) -> None:
    app = app_tree(tmp_path / "app")
    first = build_image([bbroot, app], SETTINGS, ContentStore(tmp_path / "one"), "img", epoch=0)
    # A copy with other mtimes and owners: normalised away.
    other = tmp_path / "app-copy"
    subprocess.run(["cp", "-a", str(app), str(other)], check=True)  # keeps the hard link
    for dirpath, _, filenames in os.walk(other):
        for name in filenames:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            os.lchown(path, 1000, 1000)  # clears setuid: put the mode back
            if not path.is_symlink():
                path.chmod(mode & 0o7777)
            os.utime(Path(dirpath) / name, (1234567890, 1234567890), follow_symlinks=False)
    second = build_image([bbroot, other], SETTINGS, ContentStore(tmp_path / "two"), "x", epoch=0)
    assert first.manifest.digest == second.manifest.digest
    assert [lay.diff_id for lay in first.layers] == [lay.diff_id for lay in second.layers]
    later = build_image([bbroot, app], SETTINGS, ContentStore(tmp_path / "three"), "y", epoch=99)
    assert later.manifest.digest != first.manifest.digest


def test_skopeo_reads_the_config(bbroot: Path, tmp_path: Path) -> None:
    build_image([bbroot], SETTINGS, ContentStore(tmp_path / "oci"), "bb", epoch=1700000000)
    out = subprocess.run(
        ["skopeo", "inspect", "--config", f"oci:{tmp_path / 'oci'}:bb"],
        check=True,
        capture_output=True,
        text=True,
    )
    doc: dict[str, Any] = json.loads(out.stdout)
    assert doc["created"] == "2023-11-14T22:13:20Z"
    assert (doc["os"], doc["architecture"]) == ("linux", "amd64")
    cfg = doc["config"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"] and cfg["Cmd"] == ["echo hello"]
    assert cfg["Env"] == list(SETTINGS.env)
    assert (cfg["WorkingDir"], cfg["User"]) == ("/root", "0:0")
    assert cfg["Labels"] == {"org.example.kind": "test", "b": "2"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}


@pytest.mark.root
def test_busybox_image_unpacks_like_umoci_and_runs(bbroot: Path, tmp_path: Path) -> None:
    app = app_tree(tmp_path / "app")
    store = ContentStore(tmp_path / "oci")
    build_image([bbroot, app], SETTINGS, store, "bb", epoch=0)
    subprocess.run(
        ["umoci", "unpack", "--image", f"{store.root}:bb", str(tmp_path / "bundle")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    ours = tmp_path / "ours"
    unpack_flat(store, resolve_image(store, "bb"), ours)
    theirs = tmp_path / "bundle" / "rootfs"
    assert listing(ours) == listing(theirs)
    assert (ours / "app" / "run").stat().st_mode & 0o7777 == 0o4755
    assert (ours / "app" / "data-link").stat().st_ino == (
        ours / "app" / "sub" / "data"
    ).stat().st_ino
    run = subprocess.run(
        ["chroot", str(ours), "/bin/sh", "-c", "echo hello from $(basename $0)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout == "hello from sh\n"


def listing(root: Path) -> list[tuple[str, int, int, int, str]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                body = os.readlink(p)
            elif p.is_file():
                body = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                body = ""
            out.append((str(p.relative_to(root)), st.st_mode, st.st_uid, st.st_gid, body))
    return sorted(out)


@pytest.mark.parametrize("compression", ["gz", "zst", "tar"])
def test_tarball_layers_keep_their_bytes(compression: str, tmp_path: Path) -> None:
    app = app_tree(tmp_path / "src")
    raw = tmp_path / "layer.tar"
    with tarfile.open(raw, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(app / "app", arcname="app")
    src = raw
    if compression == "gz":
        src = tmp_path / "layer.tar.gz"
        src.write_bytes(gzip.compress(raw.read_bytes()))
    elif compression == "zst":
        subprocess.run(["zstd", "-q", str(raw), "-o", str(tmp_path / "layer.tar.zst")], check=True)
        src = tmp_path / "layer.tar.zst"
    built = build_image([src], SETTINGS, ContentStore(tmp_path / "oci"), "t", epoch=0)
    assert built.layers[0].diff_id.hex == hashlib.sha256(raw.read_bytes()).hexdigest()


@pytest.mark.parametrize("compression", list(Compression))
def test_every_output_compression_unpacks_the_same(
    compression: Compression, bbroot: Path, tmp_path: Path
) -> None:
    store = ContentStore(tmp_path / "oci")
    built = build_image([bbroot], SETTINGS, store, "c", compression=compression, epoch=0)
    again = build_image(
        [bbroot], SETTINGS, ContentStore(tmp_path / "o2"), "c", compression=compression, epoch=0
    )
    assert built.manifest.digest == again.manifest.digest
    unpack_flat(store, resolve_image(store, "c"), tmp_path / "r")
    assert (tmp_path / "r" / "bin" / "busybox").read_bytes() == BUSYBOX.read_bytes()


def test_unsafe_tarball_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        info = tarfile.TarInfo("../../etc/evil")
        tar.addfile(info)
    store = ContentStore(tmp_path / "oci")
    with pytest.raises(UnsafeEntry, match=r"path contains '\.\.'"):
        build_image([bad], SETTINGS, store, "bad", epoch=0)
    assert store.images() == []


def test_bad_settings_are_refused(bbroot: Path, tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "oci")
    for settings, message in [
        (ImageSettings(env=("NOEQUALS",)), "want NAME=VALUE"),
        (ImageSettings(exposed_ports=("http",)), "want PORT"),
        (ImageSettings(workdir="relative"), "absolute path"),
    ]:
        with pytest.raises(BuildError, match=message):
            build_image([bbroot], settings, store, "bad", epoch=0)
    with pytest.raises(BuildError, match="not a directory or a tarball"):
        build_image([tmp_path / "missing"], SETTINGS, store, "bad", epoch=0)
    with pytest.raises(BuildError, match="SOURCE_DATE_EPOCH='soon'"):
        source_date_epoch({"SOURCE_DATE_EPOCH": "soon"})


@pytest.mark.root
def test_cli_build_then_unpack(
    bbroot: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    root = tmp_path / "storage"
    argv = [
        "--root",
        str(root),
        "image",
        "build",
        "-t",
        "bbcli",
        str(bbroot),
        "--cmd",
        '["/bin/sh"]',
        "--env",
        "A=1",
        "--label",
        "k=v",
        "--expose",
        "80",
    ]
    assert main(argv) == 0
    digest = capsys.readouterr().out.strip()
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == digest  # rebuilt: same digest
    assert [i.name for i in ContentStore(root).images()] == ["localhost/bbcli:latest"]

    assert main(["--root", str(root), "image", "unpack", "bbcli", str(tmp_path / "flat")]) == 0
    assert "unpacked bbcli" in capsys.readouterr().out
    assert (tmp_path / "flat" / "bin" / "busybox").is_file()

    assert main(["--root", str(root), "image", "unpack", "--layers", "bbcli"]) == 0
    layer_dirs = capsys.readouterr().out.split()
    assert [Path(p).parent for p in layer_dirs] == [tmp_path / "layers"]

    assert main(["--root", str(root), "image", "unpack", "nosuch", str(tmp_path / "x")]) == 1
    assert "is not in" in capsys.readouterr().err
    bad = ["--root", str(root), "image", "build", "-t", "x", str(tmp_path / "missing")]
    assert main(bad) == 1
    assert "not a directory or a tarball" in capsys.readouterr().err
