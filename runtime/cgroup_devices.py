"""Device rules: v1 ``devices.allow``/``deny`` lines, or on cgroup2 an eBPF device filter
that replays the rules with the v1 controller's semantics (pure, plus the bpf() loader).
"""

from __future__ import annotations

import os

from pycontainers.runtime.cgroup_layout import CgroupError
from pycontainers.runtime.cgroup_limits import Write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Final


class DeviceFilterError(CgroupError):
    """The cgroup2 device filter (eBPF) was refused; ``errno`` says whether it is allowed."""

    def __init__(self, errno_value: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno_value


# What runc allows on top of the config's rules (libcontainer/specconv AllowedDevices): mknod
# of anything, and the nodes every container gets.
DEFAULT_ALLOWED_DEVICES: Final = (
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # null
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},  # random
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},  # full
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # tty
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # zero
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},  # urandom
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},  # console
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # pts
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # ptmx
)


def device_rule_writes(devices: Iterable[Mapping[str, Any]]) -> list[Write]:
    """OCI ``linux.resources.devices`` -> v1 devices.allow/deny lines (v2 needs eBPF)."""
    out: list[Write] = []
    for rule in devices:
        kind = rule.get("type") or "a"
        major = rule.get("major")
        minor = rule.get("minor")
        access = rule.get("access") or "rwm"
        spec = (
            f"{kind} {'*' if major is None or major < 0 else major}:"
            f"{'*' if minor is None or minor < 0 else minor} {access}"
        )
        if kind == "a":
            spec = "a"  # v1 takes any "a" rule as a reset of the whole list
        out.append(Write("devices", "devices.allow" if rule.get("allow") else "devices.deny", spec))
    return out


# cgroup v2 has no devices controller: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
# cgroup answers each device access (include/uapi/linux/bpf.h, struct bpf_cgroup_dev_ctx:
# access_type = access << 16 | type, then major, minor; return 1 to allow).
_DEV_TYPE: Final = {"b": 1, "c": 2}
_DEV_ACCESS: Final = {"m": 1, "r": 2, "w": 4}


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return (
        bytes([code, (src << 4) | dst])
        + off.to_bytes(2, "little", signed=True)
        + imm.to_bytes(4, "little", signed=True)
    )


def _ldx_w(dst: int, off: int) -> bytes:
    return _insn(0x61, dst, 1, off)  # BPF_LDX | BPF_MEM | BPF_W, from the context in r1


def _jne(reg: int, imm: int, skip: int) -> bytes:
    return _insn(0x55, reg, 0, skip, imm)  # BPF_JMP | BPF_JNE | BPF_K


def _ret(value: int) -> bytes:
    return _insn(0xB7, 0, 0, 0, value) + _insn(0x95)  # r0 = value; exit


def device_exceptions(
    rules: Iterable[Mapping[str, Any]],
) -> tuple[bool, list[tuple[str, int | None, int | None, int]]]:
    """Replay OCI device rules as the v1 devices controller does (devices_cgroup.c).

    Returns the default (allow everything or nothing) and the exceptions to it as
    (type, major or None, minor or None, access mask). An "a" rule resets the list; a rule
    agreeing with the default removes its access from an identical exception.
    """
    default_allow = True  # a new cgroup starts from its parent's: the root allows all
    found: list[list[Any]] = []
    for rule in rules:
        kind = rule.get("type") or "a"
        if kind not in ("a", "b", "c"):
            raise CgroupError(f"linux.resources.devices: unknown device type {kind!r}")
        access = rule.get("access") or "rwm"
        if not access or set(access) - set(_DEV_ACCESS):
            raise CgroupError(f"linux.resources.devices: unknown access {access!r}")
        allow = bool(rule.get("allow"))
        if kind == "a":
            default_allow, found = allow, []
            continue
        mask = sum(_DEV_ACCESS[a] for a in set(access))
        major = rule.get("major")
        minor = rule.get("minor")
        key = [
            kind,
            None if major is None or major < 0 else int(major),
            None if minor is None or minor < 0 else int(minor),
        ]
        same = next((e for e in found if e[:3] == key), None)
        if allow == default_allow:
            if same is not None:
                same[3] &= ~mask
                found = [e for e in found if e[3]]
        elif same is not None:
            same[3] |= mask
        else:
            found.append([*key, mask])
    return default_allow, [(e[0], e[1], e[2], e[3]) for e in found]


def device_program(rules: Iterable[Mapping[str, Any]]) -> bytes:
    """OCI device rules -> eBPF for BPF_PROG_TYPE_CGROUP_DEVICE, with v1's semantics.

    Default deny: an access is allowed when one exception covers all of it. Default allow:
    it is denied when an exception covers any of it (the kernel's match_exception and
    match_exception_partial).
    """
    default_allow, exceptions = device_exceptions(rules)
    program = [
        _ldx_w(2, 0),
        _insn(0x54, 2, 0, 0, 0xFFFF),  # w2 &= 0xffff: the device type
        _ldx_w(3, 0),
        _insn(0x74, 3, 0, 0, 16),  # w3 >>= 16: the access asked for
        _ldx_w(4, 4),  # major
        _ldx_w(5, 8),  # minor
    ]
    for kind, major, minor, mask in exceptions:
        checks: list[tuple[int, int]] = [(2, _DEV_TYPE[kind])]
        if major is not None:
            checks.append((4, major))
        if minor is not None:
            checks.append((5, minor))
        # block: the checks, r1 = r3, w1 &= bits, the access test, then r0 = ...; exit
        size = len(checks) + 5
        block = [_jne(reg, value, size - i - 1) for i, (reg, value) in enumerate(checks)]
        block.append(_insn(0xBF, 1, 3))
        if default_allow:  # denied if any of the access asked for is in the exception
            block += [_insn(0x54, 1, 0, 0, mask), _insn(0x15, 1, 0, 2, 0)]  # JEQ w1, 0: next
        else:  # allowed if all of it is: (access & ~mask) == 0
            block += [_insn(0x54, 1, 0, 0, ~mask & 0x7), _jne(1, 0, 2)]
        program += [*block, _ret(0 if default_allow else 1)]
    program.append(_ret(1 if default_allow else 0))
    return b"".join(program)


_SYS_BPF: Final = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
_BPF_PROG_LOAD: Final = 5
_BPF_PROG_ATTACH: Final = 8
_BPF_PROG_TYPE_CGROUP_DEVICE: Final = 15
_BPF_CGROUP_DEVICE: Final = 6
_BPF_F_ALLOW_MULTI: Final = 2


def attach_device_program(directory: str, program: bytes) -> None:
    """Load ``program`` and attach it to the cgroup2 directory (BPF_F_ALLOW_MULTI, as systemd)."""
    import ctypes

    number = _SYS_BPF.get(os.uname().machine)
    if number is None:
        raise CgroupError(f"no bpf syscall number known for {os.uname().machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    insns = ctypes.create_string_buffer(program, len(program))
    license_text = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(65536)
    fields = bytearray(128)
    for offset, value, size in (
        (0, _BPF_PROG_TYPE_CGROUP_DEVICE, 4),
        (4, len(program) // 8, 4),
        (8, ctypes.addressof(insns), 8),
        (16, ctypes.addressof(license_text), 8),
        (24, 1, 4),  # log_level
        (28, len(log), 4),
        (32, ctypes.addressof(log), 8),
    ):
        fields[offset : offset + size] = value.to_bytes(size, "little")
    attr = ctypes.create_string_buffer(bytes(fields), len(fields))
    prog_fd = int(libc.syscall(number, _BPF_PROG_LOAD, attr, len(attr)))
    if prog_fd < 0:
        err = ctypes.get_errno()
        detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise DeviceFilterError(
            err, f"cannot load the device filter: {os.strerror(err)} {detail[0]}".strip()
        )
    try:
        cgroup_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fields = bytearray(32)
            for offset, value in (
                (0, cgroup_fd),
                (4, prog_fd),
                (8, _BPF_CGROUP_DEVICE),
                (12, _BPF_F_ALLOW_MULTI),
            ):
                fields[offset : offset + 4] = value.to_bytes(4, "little")
            attach = ctypes.create_string_buffer(bytes(fields), len(fields))
            if libc.syscall(number, _BPF_PROG_ATTACH, attach, len(attach)) != 0:
                err = ctypes.get_errno()
                raise DeviceFilterError(
                    err, f"cannot attach the device filter to {directory}: {os.strerror(err)}"
                )
        finally:
            os.close(cgroup_fd)
    finally:
        os.close(prog_fd)
