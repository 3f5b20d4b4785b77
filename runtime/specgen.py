"""``spec`` (a default config.json, runc's) and ``features`` (what this runtime supports)."""

from __future__ import annotations

import json
import os
from typing import Any

from pycontainers.runtime import capabilities, mountopts
from pycontainers.runtime.config import HOOK_KINDS, NAMESPACE_TYPES
from pycontainers.runtime.errors import ConfigError

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def dev_mounts() -> list[dict[str, Any]]:
    """/dev, /dev/pts, /dev/shm and /dev/mqueue as runc spec and Podman both mount them
    (fresh dicts: callers may change them)."""
    return [
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
    ]


def default_spec(*, rootless: bool = False) -> dict[str, object]:
    """runc spec's config.json (runtime-spec 1.0.2); rootless as `runc spec --rootless`."""
    caps = {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted", "ambient")}
    mounts: list[dict[str, object]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        *dev_mounts(),
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
    ]
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    linux: dict[str, object] = {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": namespaces,
        "maskedPaths": list(MASKED),
        "readonlyPaths": list(READONLY),
    }
    if rootless:
        uid, gid = os.geteuid(), os.getegid()
        linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
        linux["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
        del linux["resources"]
        mounts[2]["options"] = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
        mounts[5] = {
            "destination": "/sys",
            "type": "none",
            "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
        }
        del mounts[6]
    seccomp = _default_seccomp(DEFAULT_CAPS)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": caps,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": mounts,
        "linux": linux,
    }


def _default_seccomp(capabilities: list[str]) -> dict[str, object] | None:
    """The containers-common default profile, rendered by the seccomp part (when present)."""
    try:
        from pycontainers.runtime import seccomp
    except ImportError:
        return None
    return seccomp.default_profile(capabilities)


def write_spec(bundle: str, *, rootless: bool = False) -> None:
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise ConfigError(path, "", "file exists: remove it first")
    with open(path, "x") as f:
        json.dump(default_spec(rootless=rootless), f, indent="\t")
        f.write("\n")


def features() -> dict[str, object]:
    """runtime-spec features.md document."""
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": list(HOOK_KINDS),
        "mountOptions": sorted([*mountopts._FLAGS, *mountopts.PROPAGATION, "tmpcopyup"]),
        "linux": {
            "namespaces": list(NAMESPACE_TYPES),
            "capabilities": list(capabilities.NAMES[: capabilities.last_cap() + 1]),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": _has_module("seccomp")},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.runc.version": "pycontainers"},
    }


def _has_module(name: str) -> bool:
    return os.path.exists(os.path.join(os.path.dirname(__file__), f"{name}.py"))
