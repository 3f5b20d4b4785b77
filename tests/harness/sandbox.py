"""A real, throwaway systemd (the system manager) for tests, booted by ``sandbox.sh``.

PID 1 on this machine (and in CI) is not systemd, so tests boot Debian's systemd 252 with
systemd-nspawn in private PID, mount, UTS, IPC, network and cgroup namespaces, on an
overlay of the host's root with a tmpfs upper layer: nothing the guest writes reaches the
host. Host-side code talks to the guest's system bus through ``bus_address``; code that
must see the guest's PIDs or cgroups runs inside it with ``exec()``.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness.leaks import session_tag

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "sandbox.sh"


def free_uid(start: int = 4711) -> int:
    """A uid that the host does not know (the guest shares the host's /etc)."""
    uid = start
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


def sandbox_name() -> str:
    """``pyc-sbx-<session tag>-<n>``: the leak guard knows its own session's sandboxes."""
    global _count
    _count += 1
    return f"pyc-sbx-{session_tag()}-{os.getpid()}-{_count}"


_count = 0


@dataclass
class Sandbox:
    state_dir: Path
    binds: list[str] = field(default_factory=list)
    user_name: str = "pyctest"
    user_uid: int | None = None
    bus_address: str = ""
    leader: int = 0

    def start(self, timeout: int = 30) -> None:
        env = dict(os.environ)
        env["SBX_TIMEOUT"] = str(timeout)
        env["SBX_BIND"] = " ".join(self.binds)
        env["SBX_NAME"] = sandbox_name()
        if self.user_uid is not None:
            env["SBX_USER"] = f"{self.user_name}:{self.user_uid}"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["bash", str(SCRIPT), "start", str(self.state_dir)],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        self.bus_address = values.get("DBUS_SYSTEM_BUS_ADDRESS", "")
        self.leader = int(values.get("SBX_LEADER") or 0)
        if proc.returncode != 0 or not self.leader:
            console = (self.state_dir / "console.log").read_text(errors="replace")[-3000:]
            self.stop()
            raise RuntimeError(
                f"systemd sandbox did not boot ({proc.stderr.strip()}); console:\n{console}"
            )

    def stop(self) -> None:
        subprocess.run(
            ["bash", str(SCRIPT), "stop", str(self.state_dir)],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    @property
    def user_runtime_dir(self) -> str:
        return f"/run/user/{self.user_uid}"

    @property
    def user_bus_address(self) -> str:
        return f"unix:path=/run/user/{self.user_uid}/bus"

    def exec(
        self,
        *argv: str,
        user: bool = False,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 60,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the guest (all its namespaces); ``user=True`` as the test user.

        The guest's processes have the guest's PIDs and cgroup paths, which is what code
        reading /proc or /sys/fs/cgroup for a unit must see.
        """
        prefix = [
            "nsenter", f"--target={self.leader}",
            "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--",
        ]  # fmt: skip
        base_env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "SYSTEMD_PAGER": "",
            "SYSTEMD_COLORS": "0",
        }
        if user:
            if self.user_uid is None:
                raise RuntimeError("this sandbox has no test user")
            base_env.update(
                HOME=f"/home/{self.user_name}",
                USER=self.user_name,
                XDG_RUNTIME_DIR=self.user_runtime_dir,
                DBUS_SESSION_BUS_ADDRESS=self.user_bus_address,
            )
            prefix += [
                "setpriv", f"--reuid={self.user_uid}", f"--regid={self.user_uid}",
                "--init-groups", "--",
            ]  # fmt: skip
        base_env.update(env or {})
        cmd = [*prefix, "env", "-i", *(f"{k}={v}" for k, v in base_env.items()), *argv]
        return subprocess.run(
            cmd, capture_output=True, text=True, check=check, timeout=timeout, input=input
        )

    def systemctl(self, *args: str, user: bool = False) -> subprocess.CompletedProcess[str]:
        extra = ["--user"] if user else []
        return self.exec("systemctl", *extra, "--no-pager", *args, user=user, check=False)
