"""The leak guard: what tests may not leave behind (mounts, processes, netns, cgroups).

A snapshot is taken when the test session starts and compared when it ends; anything new
that is still there fails the run. Processes are matched by an environment marker that
every child of the test session inherits, so concurrent work on the machine is ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MARKER = "PYC_TEST_SESSION"


# iproute2 makes /run/netns a shared mount point on first use and keeps it for good; the
# namespaces under it are what counts (see netns()).
INFRASTRUCTURE_MOUNTS = frozenset({"/run/netns"})


def mounts() -> frozenset[str]:
    """Mount points of the host mount namespace (as seen by this process)."""
    points = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            points.add(line.split()[4])
    return frozenset(points - INFRASTRUCTURE_MOUNTS)


def netns() -> frozenset[str]:
    try:
        return frozenset(os.listdir("/run/netns"))
    except FileNotFoundError:
        return frozenset()


def session_tag() -> str:
    """A short tag of this test session, put into the names of sandboxes it boots."""
    return os.environ.get(MARKER, "nosession")[:12]


def cgroups(root: str = "/sys/fs/cgroup") -> frozenset[str]:
    """Every cgroup directory in every mounted hierarchy.

    The trees of systemd sandboxes booted by *other* test sessions (developers running
    suites side by side) are skipped: their names carry another session's tag.
    """
    found: set[str] = set()
    base = Path(root)
    if not base.is_dir():
        return frozenset()
    mine = f"pyc-sbx-{session_tag()}-"
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if not d.startswith("pyc-sbx-") or d.startswith(mine)]
        if "cgroup.procs" in filenames:
            found.add(dirpath)
    return frozenset(found)


def marked_processes(marker_value: str) -> frozenset[int]:
    """PIDs (other than ours and our ancestors) whose environment carries the marker."""
    needle = f"{MARKER}={marker_value}".encode()
    skip = {os.getpid()}
    pid = os.getppid()
    while pid > 1:
        skip.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and needle in env.split(b"\0"):
            found.add(int(entry))
    return frozenset(found)


def describe_pid(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        return f"{pid} {cmdline}"
    except OSError:
        return str(pid)


@dataclass(frozen=True)
class Snapshot:
    mounts: frozenset[str]
    netns: frozenset[str]
    cgroups: frozenset[str]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(mounts(), netns(), cgroups())


def leaks(before: Snapshot, after: Snapshot, processes: frozenset[int]) -> list[str]:
    """Human-readable list of what is new in ``after`` (empty when the machine is clean)."""
    found = []
    found += [f"mount left: {m}" for m in sorted(after.mounts - before.mounts)]
    found += [f"network namespace left: {n}" for n in sorted(after.netns - before.netns)]
    found += [f"cgroup left: {c}" for c in sorted(after.cgroups - before.cgroups)]
    found += [f"process left: {describe_pid(p)}" for p in sorted(processes)]
    return found
