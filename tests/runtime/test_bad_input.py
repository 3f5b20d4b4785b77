"""Bad bundles get one clear error line, and leave nothing behind: no state, no mount,
no process, no cgroup."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .conftest import BundleFactory, Runtime

pytestmark = pytest.mark.root


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if not zombie and text.encode() in cmdline:
            found.append(int(entry))
    return found


def _cgroups_named(cid: str) -> list[str]:
    hits = []
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        hits += [os.path.join(dirpath, d) for d in dirnames if d == cid]
    return hits


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def _assert_nothing_left(ours: Runtime, cid: str, *paths: Path) -> None:
    assert not (ours.root / cid).exists()
    assert _processes_naming(cid) == []
    assert _cgroups_named(cid) == []
    for path in paths:
        assert _mounts_under(path) == []


def _create_fails(ours: Runtime, bundle: Path) -> tuple[str, str]:
    cid, done = ours.create(bundle)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return cid, lines[0]


def test_missing_config_json(ours: Runtime, tmp_path: Path) -> None:
    cid, err = _create_fails(ours, tmp_path)
    assert err == f"pycontainers-runtime: invalid config {tmp_path}/config.json: " + (
        "file not found (is --bundle right?)"
    )
    _assert_nothing_left(ours, cid)


def test_invalid_json(ours: Runtime, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"ociVersion": ')
    cid, err = _create_fails(ours, tmp_path)
    assert "config.json: not valid JSON" in err
    _assert_nothing_left(ours, cid)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["linux"]["namespaces"].append({"type": "bogus"}),
            "config.json: linux.namespaces[5].type: unknown namespace type 'bogus'",
        ),
        (lambda c: c["process"].update(args=[]), "process.args: must name the program to run"),
        (lambda c: c["process"]["user"].update(uid="root"), "process.user.uid: must be an integer"),
        (
            lambda c: c["mounts"].append({"destination": "rel/path", "type": "tmpfs"}),
            "mounts[7].destination: 'rel/path' is not an absolute path",
        ),
        (
            lambda c: c["process"]["capabilities"]["bounding"].append("CAP_BOGUS"),
            "process.capabilities.bounding: unknown capability 'CAP_BOGUS'",
        ),
    ],
)
def test_invalid_fields_name_the_field(
    ours: Runtime, make_bundle: BundleFactory, edit: Any, message: str
) -> None:
    cid, err = _create_fails(ours, make_bundle(["true"], edit))
    assert message in err
    _assert_nothing_left(ours, cid)


def test_nonexistent_executable_is_reported_at_create_like_runc(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory
) -> None:
    bundle = make_bundle(["no-such-program"])
    cid, err = _create_fails(ours, bundle)
    expected = 'exec: "no-such-program": executable file not found in $PATH'
    assert err.endswith(expected)
    _, theirs = runc.create(bundle)
    assert theirs.returncode != 0 and expected.replace('"', '\\"') in theirs.stderr
    _assert_nothing_left(
        ours, cid, Path(json.loads((bundle / "config.json").read_text())["root"]["path"])
    )


def test_mount_destination_escaping_through_a_symlink_is_refused(
    ours: Runtime, make_bundle: BundleFactory, private_rootfs: Path, tmp_path: Path
) -> None:
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    depth = len(private_rootfs.parts)
    (private_rootfs / "escape").symlink_to("../" * depth + str(host_dir).lstrip("/"))

    def edit(cfg: dict[str, Any]) -> None:
        cfg["mounts"].append({"destination": "/escape/x", "type": "tmpfs", "source": "tmpfs"})

    cid, err = _create_fails(ours, make_bundle(["true"], edit, rootfs=private_rootfs))
    assert "resolve `/escape/x`: escapes the rootfs" in err
    assert list(host_dir.iterdir()) == []
    _assert_nothing_left(ours, cid, host_dir, private_rootfs)


def test_absolute_symlinks_resolve_inside_the_rootfs_like_runc(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory, private_rootfs: Path, tmp_path: Path
) -> None:
    host_dir = tmp_path / "host-abs"
    host_dir.mkdir()
    (private_rootfs / "abs").symlink_to(host_dir)

    def edit(cfg: dict[str, Any]) -> None:
        cfg["root"]["readonly"] = False
        cfg["mounts"].append({"destination": "/abs", "type": "tmpfs", "source": "tmpfs"})

    probe = (
        "grep -c ' /abs ' /proc/mounts;"
        ' awk \'$3 == "tmpfs" && $2 ~ /host-abs/ {print "in-rootfs"}\' /proc/mounts'
    )
    bundle = make_bundle(["sh", "-c", probe], edit, rootfs=private_rootfs)
    mine = ours.run(bundle)
    theirs = runc.run(bundle)
    assert mine.returncode == theirs.returncode == 0, mine.stderr + theirs.stderr
    assert mine.stdout == theirs.stdout == "0\nin-rootfs\n"
    assert list(host_dir.iterdir()) == []
    assert _mounts_under(host_dir) == []
    assert (private_rootfs / str(host_dir).lstrip("/")).is_dir()  # created inside the rootfs


def test_a_limit_this_host_cannot_apply_fails_create_and_leaves_nothing(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    """The limits are written while the init already sets up its rootfs: a refusal still
    kills it and removes the cgroups (cgroup v2 files on this host's v1 memory)."""

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["resources"]["unified"] = {"memory.max": "67108864"}

    bundle = make_bundle(["true"], edit)
    cid, err = _create_fails(ours, bundle)
    assert "linux.resources.unified" in err and "cgroup v1" in err
    _assert_nothing_left(
        ours, cid, Path(json.loads((bundle / "config.json").read_text())["root"]["path"])
    )
