"""Helpers for the engine's end-to-end tests: everything real, inside the systemd sandbox.

The daemon and ``apply`` run *inside* the guest (the PIDs and cgroups systemd reports are
the guest's). The image is the examples' busybox, built with ``pycontainers image build``
(packaging/demo/build-busybox.sh) and pushed to a docker-registry that runs inside the
guest (its network has only lo), so every test pulls through the real registry path.
Storage and bundles live in the bound ``sandbox_workdir`` (overlayfs cannot use the
guest's own overlay root as an upper layer).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.sandbox import Sandbox
from harness.util import eventually

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PYC = str(VENV_BIN / "pycontainers")
RUNTIME = str(VENV_BIN / "pycontainers-runtime")
REGISTRY_PORT = 5123
IMAGE = f"127.0.0.1:{REGISTRY_PORT}/engine/busybox:latest"
UNIT_FILE = REPO / "packaging" / "pycontainers.service"


@dataclass
class EngineEnv:
    """One engine installation in the guest: storage, runroot, the daemon's unit."""

    systemd: Sandbox
    work: Path
    image: str = IMAGE

    @property
    def root(self) -> Path:
        return self.work / "lib" / "storage"

    @property
    def runroot(self) -> Path:
        return self.work / "run"

    @property
    def containers(self) -> Path:
        return self.work / "lib" / "containers"

    @property
    def volumes(self) -> Path:
        return self.work / "lib" / "volumes"

    def pyc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.systemd.exec(
            PYC, "--root", str(self.root), "--runroot", str(self.runroot), *args, check=check,
            timeout=120,
        )  # fmt: skip

    def status(self) -> dict[str, Any]:
        return json.loads(self.pyc("status", "--format", "json").stdout)  # type: ignore[no-any-return]

    def container_status(self, name: str) -> dict[str, Any]:
        for c in self.status()["containers"]:
            if c["name"] == name:
                return c  # type: ignore[no-any-return]
        raise KeyError(name)

    def show(self, name: str, *props: str) -> dict[str, str]:
        out = self.systemd.systemctl(
            "show", "-p", ",".join(props), f"pycontainers-{name}.service"
        ).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def active(self, name: str) -> bool:
        return self.show(name, "ActiveState")["ActiveState"] == "active"

    def main_pid(self, name: str) -> int:
        return int(self.show(name, "MainPID")["MainPID"])

    def units(self) -> list[str]:
        out = self.systemd.systemctl(
            "list-units", "--all", "--plain", "--no-legend", "pycontainers-*.service"
        ).stdout
        return sorted(
            line.split()[0].removeprefix("pycontainers-").removesuffix(".service")
            for line in out.splitlines()
            if line.strip()
        )

    def journal(self, name: str) -> str:
        return self.systemd.exec(
            "journalctl", "--no-pager", "-o", "cat", "-u", f"pycontainers-{name}.service"
        ).stdout

    # -- the daemon as a unit (packaging/pycontainers.service) ----------------------

    def install_daemon(self, *daemon_args: str) -> None:
        command = " ".join(
            shlex.quote(a)
            for a in (
                PYC, "--root", str(self.root), "--runroot", str(self.runroot), "daemon",
                "--resync-interval", "30", *daemon_args,
            )
        )  # fmt: skip
        text = UNIT_FILE.read_text()
        text = text.replace(
            "ExecStart=/usr/bin/pycontainers daemon /etc/pycontainers", f"ExecStart={command}"
        )
        assert command in text, "packaging/pycontainers.service changed its ExecStart line"
        # fast restarts for the kill -9 test, and a watchdog short enough that a daemon
        # that stops pinging is caught within a test; the shipped unit keeps its values
        text = text.replace("RestartSec=2s", "RestartSec=200ms")
        assert "WatchdogSec=5min" in text
        text = text.replace("WatchdogSec=5min", "WatchdogSec=4s")
        unit = self.work / "pycontainers.service"
        unit.write_text(text)
        self.systemd.exec("cp", str(unit), "/etc/systemd/system/pycontainers.service")
        self.systemd.exec("systemctl", "daemon-reload")

    def start_daemon(self) -> None:
        self.systemd.exec("systemctl", "reset-failed", "pycontainers.service", check=False)
        self.systemd.exec("systemctl", "start", "pycontainers.service", timeout=180)

    def stop_daemon(self) -> None:
        self.systemd.exec("systemctl", "stop", "pycontainers.service", check=False)

    def daemon_pid(self) -> int:
        out = self.systemd.systemctl("show", "-p", "MainPID", "pycontainers.service").stdout
        return int(out.strip().split("=", 1)[1])

    def daemon_log(self) -> str:
        return self.systemd.exec(
            "journalctl", "--no-pager", "-o", "cat", "-u", "pycontainers.service"
        ).stdout

    def wait_converged(self, names: set[str], timeout: float = 60) -> dict[str, Any]:
        """Until status says every desired container is up to date and nothing else runs."""

        def done() -> dict[str, Any] | None:
            status = self.status()
            containers = {c["name"]: c for c in status["containers"]}
            ok = set(containers) == names and all(
                c["action"] == "nothing" and c["activeState"] in ("active", "completed")
                for c in containers.values()
            )
            return status if ok and set(self.units()) <= names else None

        return eventually(
            done, timeout=timeout, interval=0.2, what=f"convergence to {sorted(names)}"
        )

    def cleanup(self) -> None:
        """No unit, bundle or status of one test survives into the next."""
        self.stop_daemon()
        self.systemd.exec(
            "sh", "-c", "systemctl kill -s KILL 'pycontainers-*.service'", check=False
        )
        self.systemd.exec("sh", "-c", "systemctl stop 'pycontainers-*.service'", check=False)
        self.systemd.exec(
            "sh",
            "-c",
            "systemctl reset-failed 'pycontainers-*.service' pycontainers.service",
            check=False,
        )
        self.systemd.exec(
            "rm",
            "-rf",
            str(self.containers),
            str(self.volumes),
            str(self.runroot),
            str(self.work / "lib" / "engine"),
        )


def spec_yaml(name: str, script: str, *, image: str = IMAGE, extra: str = "") -> str:
    """A busybox container running ``sh -c script`` (traps TERM like a good init)."""
    return (
        "apiVersion: pycontainers/v1\nkind: Container\n"
        f"metadata:\n  name: {name}\n"
        f"spec:\n  image: {image}\n"
        f"  command: [/bin/sh, -c, {json.dumps(script)}]\n"
        "  stopTimeout: 3\n" + extra
    )


SLEEPER = "trap 'exit 0' TERM; echo started $GREETING; while :; do sleep 1 & wait; done"


def nspid(systemd: Sandbox, pid: int) -> list[str]:
    for line in systemd.exec("cat", f"/proc/{pid}/status").stdout.splitlines():
        if line.startswith("NSpid:"):
            return line.split()[1:]
    return []


def wait(predicate: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    return eventually(predicate, timeout=timeout, interval=0.1, what=what)


def guest_mounts(systemd: Sandbox, needle: str) -> list[str]:
    out = systemd.exec("cat", "/proc/self/mountinfo").stdout
    return [line for line in out.splitlines() if needle in line]


def sleep_briefly(seconds: float) -> None:
    time.sleep(seconds)
