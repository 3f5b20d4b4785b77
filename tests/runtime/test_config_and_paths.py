"""Pure parts of the runtime: config.json validation, mount options, in-root path
resolution (plain files in a temporary directory; no root needed)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pycontainers.runtime import config, jsonfast, libc, mountopts, rootfs, specgen
from pycontainers.runtime.errors import ConfigError, MountError
from pycontainers.runtime.state import ContainerStatus, valid_id


def _doc(**linux: Any) -> dict[str, Any]:
    doc = specgen.default_spec()
    doc["linux"].update(linux)
    return doc


def test_default_spec_parses_into_the_internal_config() -> None:
    cfg = config.parse(_doc(), "/bundles/a")
    assert cfg.root_path == "/bundles/a/rootfs"
    assert cfg.root_readonly is True
    assert [ns.type for ns in cfg.namespaces] == ["pid", "network", "ipc", "uts", "mount"]
    assert cfg.process is not None and cfg.process.args == ["sh"]
    assert cfg.process.rlimits[0].type == "RLIMIT_NOFILE"
    assert [m.destination for m in cfg.mounts][:2] == ["/proc", "/dev"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("root"), "root: is required"),
        (lambda d: d["process"].update(cwd="tmp"), "process.cwd: 'tmp' is not an absolute path"),
        (lambda d: d["process"]["user"].update(uid=-1), "process.user.uid: -1 is out of range"),
        (lambda d: d["linux"].update(rootfsPropagation="sideways"), "linux.rootfsPropagation"),
        (lambda d: d["linux"]["namespaces"].append({"type": "pid"}), "is listed twice"),
        (lambda d: d.update(hooks={"prestop": []}), "hooks.prestop: unknown hook kind"),
        (lambda d: d["linux"].update(devices=[{"path": "/dev/x", "type": "z"}]), "type 'z'"),
        (lambda d: d["process"].update(terminal="yes"), "process.terminal: must be true or false"),
    ],
)
def test_invalid_documents_name_file_and_field(change: Any, field: str) -> None:
    doc = _doc()
    change(doc)
    with pytest.raises(ConfigError) as err:
        config.parse(doc, "/b", "/b/config.json")
    assert str(err.value).startswith("invalid config /b/config.json")
    assert field in str(err.value)


def test_mount_options_split_into_flags_propagation_and_data() -> None:
    opts = mountopts.parse(["nosuid", "rbind", "ro", "rslave", "size=64k", "mode=755"])
    assert opts.flags == libc.MS_NOSUID | libc.MS_BIND | libc.MS_REC | libc.MS_RDONLY
    assert opts.propagation == [libc.MS_SLAVE | libc.MS_REC]
    assert opts.data == "size=64k,mode=755"
    assert mountopts.parse(["ro", "rw"]).flags == 0
    assert mountopts.parse([], "bind").is_bind


def test_status_predicates() -> None:
    assert ContainerStatus.CREATED.can_start() and not ContainerStatus.RUNNING.can_start()
    assert ContainerStatus.RUNNING.can_kill() and not ContainerStatus.STOPPED.can_kill()
    assert ContainerStatus.STOPPED.can_delete() and not ContainerStatus.RUNNING.can_delete()
    assert repr(ContainerStatus.RUNNING) == "ContainerStatus.RUNNING"


@pytest.mark.parametrize(
    ("cid", "ok"), [("abc-1.2_x+y", True), ("", False), ("..", False), (".x", False),
                    ("a/b", False), ("a b", False)]
)  # fmt: skip
def test_container_ids(cid: str, ok: bool) -> None:
    assert valid_id(cid) is ok


def test_jsonfast_round_trips_and_rejects_garbage() -> None:
    doc = _doc()
    assert jsonfast.loads(jsonfast.dumps(doc)) == doc
    for bad in ("", "{", "[1,]", '{"a": 1} 2'):
        with pytest.raises(ValueError):
            jsonfast.loads(bad)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("../run")  # relative, stays inside
    (root / "abs").symlink_to("/etc")  # absolute: the rootfs's /etc, not the host's
    (root / "up").symlink_to("../../..")  # climbs out
    (root / "loop").symlink_to("loop")
    return root


@pytest.fixture(params=["open_in_root", "walk"])
def resolver(request: pytest.FixtureRequest) -> Callable[[int, str, str | None], int]:
    """open_in_root (openat2 first) and its component walk alone must agree."""
    if request.param == "walk":
        return lambda fd, path, create: rootfs._walk_in_root(fd, path, create, 0o755)
    return lambda fd, path, create: rootfs.open_in_root(fd, path, create=create)


def _resolve(
    root: Path,
    path: str,
    create: str | None = None,
    resolver: Callable[[int, str, str | None], int] | None = None,
) -> str:
    rootfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        if resolver is None:
            fd = rootfs.open_in_root(rootfd, path, create=create)
        else:
            fd = resolver(rootfd, path, create)
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
    finally:
        os.close(rootfd)


def test_open_in_root_follows_symlinks_as_the_container_sees_them(
    tree: Path, resolver: Callable[[int, str, str | None], int]
) -> None:
    def resolve(path: str, create: str | None = None) -> str:
        return _resolve(tree, path, create, resolver)

    assert resolve("/abs") == str(tree / "etc")
    assert resolve("/var/run/x/y", create="dir") == str(tree / "run" / "x" / "y")
    assert resolve("/abs/new.conf", create="file") == str(tree / "etc" / "new.conf")
    assert (tree / "etc" / "new.conf").is_file()
    assert resolve("/etc/made", create="dir") == str(tree / "etc" / "made")
    assert resolve("/etc/made.conf", create="file") == str(tree / "etc" / "made.conf")
    assert (tree / "etc" / "made").is_dir() and (tree / "etc" / "made.conf").is_file()
    assert resolve("/var/run/x/../x/y") == str(tree / "run" / "x" / "y")


@pytest.mark.parametrize("path", ["/up/tmp", "/../etc", "/etc/../../x"])
def test_open_in_root_refuses_to_climb_out(
    tree: Path, path: str, resolver: Callable[[int, str, str | None], int]
) -> None:
    with pytest.raises(MountError, match="escapes the rootfs"):
        _resolve(tree, path, "dir", resolver)
    assert not (tree.parent.parent / "tmp" / "x").exists()


def test_open_in_root_stops_symlink_loops(tree: Path) -> None:
    with pytest.raises(MountError, match="too many levels of symbolic links"):
        _resolve(tree, "/loop/x")
