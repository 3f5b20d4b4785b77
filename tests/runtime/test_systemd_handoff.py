"""The runtime under a real systemd (the throwaway sandbox): `run --detach` in a
Type=notify unit leaves the container's init as the unit's main PID and no Python
process behind; systemd then sees the container's own exit status."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.util import eventually
from pycontainers.runtime import specgen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from harness.sandbox import Sandbox

pytestmark = [pytest.mark.root, pytest.mark.systemd, pytest.mark.slow]

RUNTIME = str(Path(sys.executable).parent / "pycontainers-runtime")
STATE = "/run/pyc-rt-test"


@pytest.fixture(scope="module")
def guest_rootfs(sandbox_workdir: Path, rootfs_factory: Callable[[Path], Path]) -> Path:
    dest = sandbox_workdir / "runtime-rootfs"
    if not dest.exists():
        rootfs_factory(dest)
    return dest


def _bundle(base: Path, rootfs: Path, script: str) -> Path:
    bundle = base / f"bundle-{uuid.uuid4().hex[:8]}"
    bundle.mkdir()
    bundle.chmod(0o755)
    cfg: dict[str, Any] = specgen.default_spec()
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", script]
    cfg["root"] = {"path": str(rootfs), "readonly": True}
    (bundle / "config.json").write_text(json.dumps(cfg))
    return bundle


def _show(systemd: Sandbox, unit: str, *props: str) -> dict[str, str]:
    out = systemd.systemctl("show", unit, *(f"--property={p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _start_unit(
    systemd: Sandbox,
    unit: str,
    bundle: Path,
    cid: str,
    *props: str,
    foreground: bool = False,
    check: bool = True,
) -> None:
    detach = [] if foreground else ["--detach"]
    systemd.exec(
        "systemd-run", f"--unit={unit}", "--property=Type=notify",
        "--property=NotifyAccess=all", "--property=Delegate=yes", *props,
        f"--property=ExecStopPost={RUNTIME} --root {STATE} delete --force {cid}",
        RUNTIME, "--root", STATE, "run", *detach, "--bundle", str(bundle), cid,
        check=check,
    )  # fmt: skip


def _cleanup(systemd: Sandbox, unit: str, cid: str) -> None:
    systemd.systemctl("kill", "--signal=SIGKILL", unit)
    systemd.systemctl("stop", unit)
    systemd.systemctl("reset-failed", unit)
    systemd.exec(RUNTIME, "--root", STATE, "delete", "--force", cid, check=False)


def test_container_init_becomes_the_units_main_pid(
    systemd: Sandbox, sandbox_workdir: Path, guest_rootfs: Path
) -> None:
    cid = f"sd-{uuid.uuid4().hex[:8]}"
    unit = f"pyc-rt-{cid}.service"
    bundle = _bundle(sandbox_workdir, guest_rootfs, "trap 'exit 0' TERM; while :; do sleep 1; done")
    try:
        _start_unit(systemd, unit, bundle, cid, "--property=KillMode=mixed")  # as the engine
        props = _show(systemd, unit, "MainPID", "ActiveState", "SubState", "ControlGroup")
        assert (props["ActiveState"], props["SubState"]) == ("active", "running")
        state = json.loads(systemd.exec(RUNTIME, "--root", STATE, "state", cid).stdout)
        assert props["MainPID"] == str(state["pid"])
        comms = systemd.exec(
            "sh", "-c", f"for p in $(cat /sys/fs/cgroup/systemd{props['ControlGroup']}"
            "/cgroup.procs $(find /sys/fs/cgroup/systemd" + props["ControlGroup"] +
            " -mindepth 2 -name cgroup.procs)); do cat /proc/$p/comm; done"
        ).stdout.split()  # fmt: skip
        assert comms and not [c for c in comms if c.startswith("python")]
        systemd.systemctl("stop", unit)
        # the stop signal reached the init (its trap exits 0): systemd watched it as its
        # own child, not as an "alien" main PID it can only SIGKILL
        assert _show(systemd, unit, "Result")["Result"] == "success"
        eventually(
            lambda: (
                systemd.exec(RUNTIME, "--root", STATE, "state", cid, check=False).returncode != 0
            ),
            what="ExecStopPost deleted the container",
        )
    finally:
        _cleanup(systemd, unit, cid)


def test_systemd_records_the_containers_exit_status(
    systemd: Sandbox, sandbox_workdir: Path, guest_rootfs: Path
) -> None:
    cid = f"sd-{uuid.uuid4().hex[:8]}"
    unit = f"pyc-rt-{cid}.service"
    bundle = _bundle(sandbox_workdir, guest_rootfs, "sleep 0.5; exit 3")
    try:
        _start_unit(systemd, unit, bundle, cid)
        props = eventually(
            lambda: (
                (p := _show(systemd, unit, "ActiveState", "Result", "ExecMainStatus"))
                and p["ActiveState"] == "failed"
                and p
            ),
            what="unit failed",
        )
        assert (props["Result"], props["ExecMainStatus"]) == ("exit-code", "3")
    finally:
        _cleanup(systemd, unit, cid)


def _journal(systemd: Sandbox, unit: str) -> str:
    return systemd.exec("journalctl", "--no-pager", "-o", "cat", "-u", unit, check=False).stdout


def _wait_ended(systemd: Sandbox, unit: str) -> dict[str, str]:
    def ended() -> dict[str, str] | None:
        props = _show(systemd, unit, "ActiveState", "Result", "ExecMainStatus")
        return props if props["ActiveState"] in ("failed", "inactive") else None

    return eventually(ended, what=f"{unit} ended")


@pytest.mark.parametrize(
    ("script", "result", "status"),
    [
        ("exit 3", "exit-code", "3"),
        ("true", "success", "0"),
        ("usleep 1000; exit 4", "exit-code", "4"),
    ],
)
def test_one_shot_container_hands_its_status_to_systemd(
    systemd: Sandbox,
    sandbox_workdir: Path,
    guest_rootfs: Path,
    script: str,
    result: str,
    status: str,
) -> None:
    """A container that exits at once, or around the time systemd handles MAINPID and
    READY: the start job succeeds, the unit ends with the container's status, and the
    runtime is gone by itself before systemd cleans up (no SIGKILL for it)."""
    cid = f"sd-{uuid.uuid4().hex[:8]}"
    unit = f"pyc-rt-{cid}.service"
    bundle = _bundle(sandbox_workdir, guest_rootfs, script)
    try:
        _start_unit(systemd, unit, bundle, cid, "--property=KillMode=mixed")
        props = _wait_ended(systemd, unit)
        assert (props["Result"], props["ExecMainStatus"]) == (result, status)
        journal = _journal(systemd, unit)
        assert "pycontainers-ru) with signal SIGKILL" not in journal, journal
        # nor a MAINPID systemd had to refuse (it was handed over alive, or not at all)
        assert "does not exist or is a zombie" not in journal, journal
    finally:
        _cleanup(systemd, unit, cid)


def test_foreground_run_under_systemd_exits_with_the_containers_status(
    systemd: Sandbox, sandbox_workdir: Path, guest_rootfs: Path
) -> None:
    """Foreground `run` stays the unit's main process: READY=1 only, then its own exit
    status is the container's."""
    cid = f"sd-{uuid.uuid4().hex[:8]}"
    unit = f"pyc-rt-{cid}.service"
    bundle = _bundle(sandbox_workdir, guest_rootfs, "sleep 0.3; exit 5")
    try:
        _start_unit(systemd, unit, bundle, cid, foreground=True)
        props = _wait_ended(systemd, unit)
        assert (props["Result"], props["ExecMainStatus"]) == ("exit-code", "5")
    finally:
        _cleanup(systemd, unit, cid)


def test_failed_execve_reaches_the_journal(
    systemd: Sandbox, sandbox_workdir: Path, guest_rootfs: Path
) -> None:
    garbage = guest_rootfs / "bin" / "garbage"
    garbage.write_bytes(b"\x00\x01 not an executable format\n")
    garbage.chmod(0o755)
    cid = f"sd-{uuid.uuid4().hex[:8]}"
    unit = f"pyc-rt-{cid}.service"
    bundle = _bundle(sandbox_workdir, guest_rootfs, "")
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["args"] = ["/bin/garbage"]
    (bundle / "config.json").write_text(json.dumps(cfg))
    try:
        _start_unit(systemd, unit, bundle, cid, check=False)
        props = _wait_ended(systemd, unit)
        assert (props["Result"], props["ExecMainStatus"]) == ("exit-code", "1")
        eventually(
            lambda: (
                'pycontainers-runtime: exec: "/bin/garbage": exec format error'
                in _journal(systemd, unit)
            ),
            what="the error line in the unit's journal",
        )
    finally:
        _cleanup(systemd, unit, cid)
