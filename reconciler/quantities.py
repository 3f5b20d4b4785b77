"""Parsing of the human quantities a spec may use: memory sizes, CPU amounts, durations,
signals and capability names. Each parser returns one canonical value, so two spellings of
the same setting ("512Mi" and 536870912) hash the same and never replace a container.
"""

from __future__ import annotations

import re
import signal

_MEMORY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[KMGTPE]i?|k|)$")
_MEMORY_FACTORS = {
    "": 1,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "P": 1000**5,
    "E": 1000**6,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
}
_DURATION = re.compile(r"^(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+(?:\.[0-9]+)?)s)?$")

# From linux/include/uapi/linux/capability.h, in kernel order (CAP_LAST_CAP = 40 on 6.x).
CAPABILITIES = tuple(
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ]
)


def parse_memory(value: object) -> int:
    """Bytes from an int or a Kubernetes-style quantity ("512Mi", "1G")."""
    if isinstance(value, bool):
        raise ValueError("must be a byte count or a quantity such as 512Mi")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("must be positive")
        return value
    if not isinstance(value, str):
        raise ValueError("must be a byte count or a quantity such as 512Mi")
    text = value.strip()
    if re.fullmatch(r"[0-9.]+\s*[mgtb]", text, re.IGNORECASE) and text[-1] in "mgtb":
        # Docker reads "512m" as MiB, Kubernetes as milli-bytes: refuse the ambiguity.
        raise ValueError(
            f"ambiguous quantity {value!r}: write {text[:-1]}{text[-1].upper()}i "
            f"(powers of 1024) or {text[:-1]}{text[-1].upper()} (powers of 1000)"
        )
    match = _MEMORY.match(text)
    if match is None:
        raise ValueError(f"invalid quantity {value!r}: use e.g. 512Mi, 1Gi or 1000000")
    amount = float(match.group("number")) * _MEMORY_FACTORS[match.group("unit")]
    if amount < 1 or amount != int(amount):
        raise ValueError(f"quantity {value!r} is not a whole number of bytes")
    return int(amount)


def parse_cpus(value: object) -> float:
    """CPUs as a float from 1.5, 2 or "500m" (millicpus, as Kubernetes writes them)."""
    if isinstance(value, bool):
        raise ValueError("must be a number of CPUs such as 0.5 or 500m")
    if isinstance(value, int | float):
        cpus = float(value)
    elif isinstance(value, str) and re.fullmatch(r"[0-9]+m", value.strip()):
        cpus = int(value.strip()[:-1]) / 1000
    elif isinstance(value, str) and re.fullmatch(r"[0-9]+(\.[0-9]+)?", value.strip()):
        cpus = float(value)
    else:
        raise ValueError(f"invalid cpu amount {value!r}: use e.g. 0.5, 2 or 500m")
    if not 0.001 <= cpus <= 4096:
        raise ValueError(f"cpu amount {value!r} must be between 0.001 and 4096")
    return round(cpus, 3)


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration string ("30s", "2m", "1h30m")."""
    if isinstance(value, bool):
        raise ValueError("must be seconds or a duration such as 30s or 2m")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip() and (m := _DURATION.match(value.strip())):
        seconds = (
            int(m.group("h") or 0) * 3600 + int(m.group("m") or 0) * 60 + float(m.group("s") or 0)
        )
    else:
        raise ValueError(f"invalid duration {value!r}: use seconds or e.g. 30s, 2m, 1h30m")
    if not 0 <= seconds <= 24 * 3600:
        raise ValueError(f"duration {value!r} must be between 0 and 24h")
    return seconds


def parse_signal(value: object) -> str:
    """Canonical signal name ("SIGTERM") from "TERM", "sigterm", 15 or "SIGRTMIN+3"."""
    if isinstance(value, bool):
        raise ValueError("must be a signal name or number")
    if isinstance(value, int):
        try:
            return signal.Signals(value).name
        except ValueError:
            raise ValueError(f"unknown signal number {value}") from None
    if not isinstance(value, str):
        raise ValueError("must be a signal name or number")
    name = value.strip().upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name in signal.Signals.__members__:
        return name
    rt = re.fullmatch(r"SIGRTMIN\+([0-9]+)", name)
    if rt and int(rt.group(1)) <= signal.SIGRTMAX - signal.SIGRTMIN:
        return name
    raise ValueError(f"unknown signal {value!r}")


def parse_capability(value: object) -> str:
    """Canonical capability name ("CAP_NET_ADMIN") from "net_admin" or "CAP_NET_ADMIN"."""
    if not isinstance(value, str):
        raise ValueError("must be a capability name such as NET_BIND_SERVICE")
    name = value.strip().upper()
    if name == "ALL":
        return name
    if not name.startswith("CAP_"):
        name = "CAP_" + name
    if name not in CAPABILITIES:
        import difflib

        close = difflib.get_close_matches(name, CAPABILITIES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown capability {value!r}{hint}")
    return name
