"""The leak guard notices each kind of leak it promises to catch."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import leaks

pytestmark = pytest.mark.root


def test_guard_sees_a_mount(tmp_path: Path) -> None:
    before = leaks.Snapshot.take()
    subprocess.run(["mount", "-t", "tmpfs", "leakprobe", str(tmp_path)], check=True)
    try:
        found = leaks.leaks(before, leaks.Snapshot.take(), frozenset())
        assert found == [f"mount left: {tmp_path}"]
    finally:
        subprocess.run(["umount", str(tmp_path)], check=True)
    assert leaks.leaks(before, leaks.Snapshot.take(), frozenset()) == []


def test_guard_sees_a_cgroup() -> None:
    before = leaks.Snapshot.take()
    path = Path(tempfile.mkdtemp(prefix="pyc-leakprobe-", dir="/sys/fs/cgroup/unified"))
    try:
        assert leaks.leaks(before, leaks.Snapshot.take(), frozenset()) == [f"cgroup left: {path}"]
    finally:
        path.rmdir()


def test_guard_sees_a_network_namespace() -> None:
    name = f"pyc-leakprobe-{os.getpid()}"
    before = leaks.Snapshot.take()
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert f"network namespace left: {name}" in leaks.leaks(
            before, leaks.Snapshot.take(), frozenset()
        )
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_guard_sees_a_process_that_outlives_its_test() -> None:
    marker = os.environ[leaks.MARKER]
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while proc.pid not in leaks.marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.pid in leaks.marked_processes(marker)
    finally:
        proc.kill()
        proc.wait()
    assert proc.pid not in leaks.marked_processes(marker)


def test_guard_sees_its_own_sandbox_cgroups_but_not_others() -> None:
    before = leaks.Snapshot.take()
    mine = Path(f"/sys/fs/cgroup/unified/pyc-sbx-{leaks.session_tag()}-probe")
    other = Path("/sys/fs/cgroup/unified/pyc-sbx-someoneelse-probe")
    mine.mkdir()
    other.mkdir()
    try:
        assert leaks.leaks(before, leaks.Snapshot.take(), frozenset()) == [f"cgroup left: {mine}"]
    finally:
        mine.rmdir()
        other.rmdir()
