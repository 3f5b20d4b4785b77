"""Hardening against known runtime escapes; each test fails without its protection.

- CVE-2024-21626: a host directory fd leaked to the runtime, named as the process's cwd
  through /proc/self/fd/N, would leave the program working in the host's tree.
- CVE-2019-5736: while `exec` is still the host's python inside the container's PID
  namespace, a container process could open its /proc/PID/exe (the host interpreter).
- CVE-2021-30465: a path component swapped for a symlink between the check and the use
  would point a mount at the host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pycontainers.runtime import rootfs
from pycontainers.runtime.errors import MountError

from .conftest import BundleFactory, Runtime

pytestmark = pytest.mark.root


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_cwd_through_a_leaked_host_fd_is_refused(
    verb: str, ours: Runtime, make_bundle: BundleFactory, tmp_path: Path
) -> None:
    host_dir = tmp_path / "host-secret"
    host_dir.mkdir()
    (host_dir / "secret").write_text("host data")
    leaked = os.open(host_dir, os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(leaked, True)
    probe = ["sh", "-c", "ls; pwd"]
    try:
        if verb == "run":
            bundle = make_bundle(
                probe, lambda c: c["process"].update(cwd=f"/proc/self/fd/{leaked}")
            )
            done = ours.run(bundle, pass_fds=(leaked,))
        else:
            cid, _ = ours.create(make_bundle(["sleep", "60"]))
            ours("start", cid, check=True)
            done = ours("exec", "--cwd", f"/proc/self/fd/{leaked}", cid, *probe, pass_fds=(leaked,))
    finally:
        os.close(leaked)
    assert "secret" not in done.stdout
    assert done.returncode != 0
    assert "process.cwd" in done.stderr and "outside the container" in done.stderr


def test_exec_hides_the_host_interpreter_until_it_execs(
    ours: Runtime, make_bundle: BundleFactory, rootfs_factory: Callable[[Path], Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    """An `exec` is the host's python inside the container until execve.

    Held there by the container's /etc/passwd being a fifo (exec reads it for HOME), it
    must not be dumpable: a container process can neither read its /proc/PID/exe link
    nor open the host interpreter through it. The container has a user namespace and
    every capability in it, so only non-dumpability stands in the way (without a user
    namespace the kernel's ptrace check already refuses a caller holding fewer
    capabilities than the target; with CAP_SYS_PTRACE on the host nothing would).
    """
    base = Path(tempfile.mkdtemp(prefix="pyc-rt-harden-"))
    try:
        base.chmod(0o755)  # traversable by the mapped root
        root = rootfs_factory(base / "rootfs")
        os.mkfifo(root / "etc" / "passwd")
        (root / "etc" / "passwd").chmod(0o666)
        seen = _probe_held_exec(ours, make_bundle, root, tmp_path)
    finally:
        shutil.rmtree(base)
    assert seen.split() == ["found", "no-link", "no-write"]


def _all_caps_in_a_user_namespace(cfg: dict[str, Any]) -> None:
    cfg["process"]["env"].append("HOME=/")
    del cfg["process"]["capabilities"]
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def _probe_held_exec(ours: Runtime, make_bundle: BundleFactory, root: Path, tmp: Path) -> str:
    cid, _ = ours.create(make_bundle(["sleep", "60"], _all_caps_in_a_user_namespace, root))
    ours("start", cid, check=True)
    process = tmp / "process.json"
    process.write_text('{"args": ["true"], "cwd": "/", "env": ["PATH=/bin"]}')
    held = subprocess.Popen(
        [*ours.argv, "--root", str(ours.root), "exec", "--process", str(process), cid],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    probe = (
        'for d in /proc/[0-9]*; do [ "$(cat $d/comm)" = pycontainers-ru ] || continue;'
        " echo found; readlink $d/exe || echo no-link; (echo x >> $d/exe) 2>/dev/null"
        " && echo opened || echo no-write; done"
    )
    try:
        seen = ""
        for _ in range(200):
            seen = ours("exec", cid, "sh", "-c", probe, check=True).stdout
            if seen:
                break
            time.sleep(0.02)
        released = ours("exec", cid, "sh", "-c", "echo root:x:0:0::/:/bin/sh > /etc/passwd")
        assert released.returncode == 0, released.stderr
        _, err = held.communicate(timeout=20)
        assert held.returncode == 0, err
    finally:
        held.kill()
        held.communicate()
        ours("delete", "--force", cid)
    return seen


class _SwapAfterCheck:
    """os for rootfs, except that checking ``name`` (lstat) swaps it for a symlink
    right after: the window between check and use that a racing container process
    would aim for, made deterministic."""

    def __init__(self, name: str, target: str) -> None:
        self.name = name
        self.target = target
        self.swapped = False

    def __getattr__(self, attr: str) -> Any:
        return getattr(os, attr)

    def stat(self, path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> Any:
        result = os.stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)
        if path == self.name and not self.swapped:
            self.swapped = True
            os.rename(path, f"{path}.moved", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.symlink(self.target, path, dir_fd=dir_fd)
        return result


@pytest.mark.parametrize("dest", ["mnt", "mnt/sub"])
def test_a_symlink_swapped_in_after_the_check_never_leads_out(
    dest: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    container_root = tmp_path / "rootfs"
    (container_root / "mnt" / "sub").mkdir(parents=True)
    host = tmp_path / "host"
    (host / "sub").mkdir(parents=True)
    swap = _SwapAfterCheck("mnt", str(host))
    monkeypatch.setattr(rootfs, "os", swap)
    rootfd = os.open(container_root, os.O_PATH | os.O_DIRECTORY)
    try:
        # the component walk: open_in_root's openat2 fast path has no window between a
        # check and an open, but absolute symlinks (and kernels before 5.6) take the walk
        fd = rootfs._walk_in_root(rootfd, dest, None, 0o755)
    except (OSError, MountError):
        fd = -1  # refusing is fine; resolving to the host is not
    finally:
        os.close(rootfd)
    assert swap.swapped
    if fd >= 0:
        try:
            resolved = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        assert not resolved.startswith(str(host)), resolved


def test_no_new_privileges_and_the_bounding_set_hold_for_children(
    ours: Runtime, make_bundle: BundleFactory
) -> None:
    """The program's children (here a pipeline's `cat` and a shell's child shell) keep
    NoNewPrivs and the bounding set of runc's default (AUDIT_WRITE, KILL,
    NET_BIND_SERVICE): set on the process before execve, inherited across fork."""

    def setuid_child(cfg: dict[str, Any]) -> None:
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}

    probe = (
        "cat /proc/self/status | grep -E '^(CapBnd|CapEff|NoNewPrivs)';"
        " sh -c 'grep -E \"^(CapBnd|NoNewPrivs)\" /proc/self/status; true'"
    )
    done = ours.run(make_bundle(["sh", "-c", probe], setuid_child))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == [
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000020000420",
        "NoNewPrivs:\t1",
        "CapBnd:\t0000000020000420",
        "NoNewPrivs:\t1",
        "",
    ]


@pytest.mark.parametrize("how", ["direct", "shebang", "symlinked-interpreter", "exec"])
def test_the_runtimes_own_executable_is_never_the_program(
    how: str, ours: Runtime, make_bundle: BundleFactory, private_rootfs: Path
) -> None:
    """/proc/self/exe at execve is the host's python: as the program or as a script's
    interpreter it would run the host binary inside the container (CVE-2019-5736)."""
    (private_rootfs / "evil").write_text("#!/proc/self/exe\n")
    (private_rootfs / "bin" / "innocent").symlink_to("/proc/self/exe")
    (private_rootfs / "evil2").write_text("#!/bin/innocent -c pass\n")
    for script in ("evil", "evil2"):
        (private_rootfs / script).chmod(0o711)  # execute-only: still inspected
    program = {"direct": "/proc/self/exe", "shebang": "/evil"}.get(how, "/evil2")
    if how == "exec":
        cid, _ = ours.create(make_bundle(["sleep", "60"], rootfs=private_rootfs))
        ours("start", cid, check=True)
        done = ours("exec", cid, "/evil")
        program = "/evil"
    else:
        cid, done = ours.create(make_bundle([program], rootfs=private_rootfs))
    assert done.returncode != 0
    assert f'exec: "{program}"' in done.stderr
    assert "is the runtime's own executable" in done.stderr
