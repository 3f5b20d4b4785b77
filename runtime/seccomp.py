"""Load an OCI ``linux.seccomp`` filter into the calling process, through libseccomp.

The container init calls ``prepare_filter`` while the host's files are still visible (before
pivot_root) and ``load_compiled`` last, right before execve, once no_new_privs is set (or
while it still holds CAP_SYS_ADMIN): a filter cannot be undone, and every syscall after it
is filtered. libseccomp2 (``libseccomp.so.2``) is bound with ctypes on first use, so a start
without seccomp never loads it.

Semantics follow runc (libcontainer/seccomp): syscall names this architecture does not know
are skipped, rules whose action equals the default are dropped, conditions on distinct
arguments are ANDed in one rule while several conditions on the same argument become one
rule each (ORed), ``errnoRet`` defaults to EPERM. ``default_profile()`` renders the
containers-common default profile (shipped as ``seccomp_default.json``) for ``spec``.

libseccomp only compiles: the program is exported as classic BPF and installed with
seccomp(2) directly, so a compiled program can be cached (``prepare_filter(cfg,
cache_dir=...)``) and a start with a known profile skips libseccomp's ~15 ms of compiling.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

# libseccomp's action values (seccomp.h)
ACTIONS: Final[Mapping[str, int]] = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_TAKES_ERRNO: Final = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})

# enum scmp_compare
OPERATORS: Final[Mapping[str, int]] = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# enum scmp_filter_attr
_ATTR_CTL_NNP: Final = 3
FLAGS: Final = frozenset(
    {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}
)

MAX_SYSCALL_ARGS: Final = 6
PROFILE_FILE: Final = os.path.join(os.path.dirname(__file__), "seccomp_default.json")

# uname -m -> the OCI architecture, and the Go name profiles use in "includes.arches"
NATIVE_ARCH: Final[Mapping[str, tuple[str, str]]] = {
    "x86_64": ("SCMP_ARCH_X86_64", "amd64"),
    "i686": ("SCMP_ARCH_X86", "386"),
    "aarch64": ("SCMP_ARCH_AARCH64", "arm64"),
    "armv7l": ("SCMP_ARCH_ARM", "arm"),
    "ppc64le": ("SCMP_ARCH_PPC64LE", "ppc64le"),
    "s390x": ("SCMP_ARCH_S390X", "s390x"),
    "riscv64": ("SCMP_ARCH_RISCV64", "riscv64"),
    "mips64": ("SCMP_ARCH_MIPS64", "mips64"),
}


def _log() -> Any:
    import logging  # only when there is something to say: this runs in every container start

    return logging.getLogger(__name__)


class SeccompError(Exception):
    """The seccomp config is invalid, or the filter cannot be built or loaded."""


# ---------------------------------------------------------------------------------------
# config -> rules (pure, apart from resolving names through the library)


class Condition(NamedTuple):
    arg: int
    op: int
    value: int
    value_two: int


class Rule(NamedTuple):
    syscall: str
    action: int
    conditions: tuple[Condition, ...]


class FilterPlan(NamedTuple):
    default_action: int
    architectures: tuple[str, ...]
    flags: tuple[str, ...]
    rules: tuple[Rule, ...]


def action_value(name: object, errno_ret: object, where: str) -> int:
    """OCI action name (+ errnoRet) -> libseccomp action value."""
    if not isinstance(name, str) or name not in ACTIONS:
        if name == "SCMP_ACT_NOTIFY":
            raise SeccompError(f"{where}: SCMP_ACT_NOTIFY (a seccomp agent) is not supported")
        raise SeccompError(f"{where}: unknown action {name!r}")
    if name not in _TAKES_ERRNO:
        return ACTIONS[name]
    code = errno.EPERM if errno_ret is None else errno_ret
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 0xFFFF:
        raise SeccompError(f"{where}: errnoRet must be an integer 0-65535, got {errno_ret!r}")
    return ACTIONS[name] | code


def _u64(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SeccompError(f"{where}: expected an integer, got {value!r}")
    if not -(1 << 63) <= value < (1 << 64):
        raise SeccompError(f"{where}: {value} does not fit in 64 bits")
    return value & 0xFFFFFFFFFFFFFFFF


def _conditions(args: Sequence[Mapping[str, Any]], where: str) -> list[tuple[Condition, ...]]:
    """One AND-group, or one group per condition when an argument is tested twice (runc)."""
    conds = []
    for j, arg in enumerate(args):
        here = f"{where}.args[{j}]"
        index = arg.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise SeccompError(f"{here}.index: expected an integer, got {index!r}")
        if not 0 <= index < MAX_SYSCALL_ARGS:
            raise SeccompError(f"{here}.index: {index} is not a syscall argument (0-5)")
        op = arg.get("op")
        if not isinstance(op, str) or op not in OPERATORS:
            raise SeccompError(f"{here}.op: unknown operator {op!r}")
        conds.append(
            Condition(
                index,
                OPERATORS[op],
                _u64(arg.get("value", 0), f"{here}.value"),
                _u64(arg.get("valueTwo", 0), f"{here}.valueTwo"),
            )
        )
    indexes = [c.arg for c in conds]
    if len(set(indexes)) != len(indexes):
        return [(c,) for c in conds]
    return [tuple(conds)]


def plan_filter(config: Mapping[str, Any]) -> FilterPlan:
    """Validate ``linux.seccomp`` and turn it into rules; no syscall is resolved yet."""
    where = "linux.seccomp"
    default = action_value(
        config.get("defaultAction"), config.get("defaultErrnoRet"), f"{where}.defaultAction"
    )
    if config.get("listenerPath"):
        raise SeccompError(f"{where}.listenerPath: seccomp agents are not supported")
    arches = tuple(config.get("architectures") or ())
    for i, arch in enumerate(arches):
        if not isinstance(arch, str) or not arch.startswith("SCMP_ARCH_"):
            raise SeccompError(f"{where}.architectures[{i}]: unknown architecture {arch!r}")
    flags = tuple(config.get("flags") or ())
    for i, flag in enumerate(flags):
        if flag not in FLAGS:
            raise SeccompError(f"{where}.flags[{i}]: unknown flag {flag!r}")
    rules: list[Rule] = []
    for i, call in enumerate(config.get("syscalls") or ()):
        here = f"{where}.syscalls[{i}]"
        names = call.get("names") or ([call["name"]] if call.get("name") else [])
        if not names or not all(isinstance(n, str) and n for n in names):
            raise SeccompError(f"{here}.names: expected a list of syscall names")
        action = action_value(call.get("action"), call.get("errnoRet"), f"{here}.action")
        groups = _conditions(call.get("args") or (), here)
        if action == default:
            continue  # libseccomp refuses rules that repeat the default; runc skips them
        rules += [Rule(name, action, group) for name in names for group in groups]
    return FilterPlan(default, arches, flags, tuple(rules))


# ---------------------------------------------------------------------------------------
# libseccomp through ctypes (bound on first use)

_lib: Any = None
_arg_cmp: Any = None


def _libseccomp() -> tuple[Any, Any]:
    global _lib, _arg_cmp
    if _lib is None:
        try:
            lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as exc:
            raise SeccompError(
                f"linux.seccomp needs libseccomp.so.2 (Debian: apt install libseccomp2): {exc}"
            ) from exc

        class ArgCmp(ctypes.Structure):
            _fields_ = [
                ("arg", ctypes.c_uint),
                ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64),
            ]

        ctx = ctypes.c_void_p
        lib.seccomp_init.argtypes, lib.seccomp_init.restype = [ctypes.c_uint32], ctx
        lib.seccomp_release.argtypes, lib.seccomp_release.restype = [ctx], None
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_add.argtypes = [ctx, ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
        lib.seccomp_rule_add_array.argtypes = [
            ctx,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(ArgCmp),
        ]
        lib.seccomp_attr_set.argtypes = [ctx, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_load.argtypes = [ctx]
        lib.seccomp_export_bpf.argtypes = [ctx, ctypes.c_int]

        class Version(ctypes.Structure):
            _fields_ = [
                ("major", ctypes.c_uint),
                ("minor", ctypes.c_uint),
                ("micro", ctypes.c_uint),
            ]

        lib.seccomp_version.restype = ctypes.POINTER(Version)
        _lib, _arg_cmp = lib, ArgCmp
    return _lib, _arg_cmp


def syscall_number(name: str) -> int | None:
    """libseccomp's number for a syscall name on this architecture (None if unknown)."""
    lib, _ = _libseccomp()
    number = int(lib.seccomp_syscall_resolve_name(name.encode()))
    return None if number == -1 else number  # __NR_SCMP_ERROR


class CompiledFilter(NamedTuple):
    """A filter as the kernel takes it: classic BPF (struct sock_filter[]) and seccomp flags."""

    program: bytes
    flags: int


# seccomp(2) SECCOMP_FILTER_FLAG_* values, for loading a compiled program directly
_KERNEL_FLAGS: Final[Mapping[str, int]] = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}
_SECCOMP_SET_MODE_FILTER: Final = 1
_SYS_SECCOMP: Final[Mapping[str, int]] = {
    "x86_64": 317,
    "aarch64": 277,
    "riscv64": 277,
    "ppc64le": 358,
    "s390x": 348,
    "i686": 354,
    "armv7l": 383,
}


def _context(plan: FilterPlan) -> Any:
    """A libseccomp filter context holding ``plan``; the caller releases it."""
    lib, arg_cmp = _libseccomp()
    ctx = lib.seccomp_init(plan.default_action)
    if not ctx:
        raise SeccompError("linux.seccomp.defaultAction: libseccomp refused the default action")
    try:
        # no_new_privs is the runtime's decision (process.noNewPrivileges), not libseccomp's
        _check(lib.seccomp_attr_set(ctx, _ATTR_CTL_NNP, 0), "seccomp_attr_set(CTL_NNP)")
        for arch in plan.architectures:
            token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if token == 0:
                raise SeccompError(f"linux.seccomp.architectures: unknown architecture {arch!r}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc not in (0, -errno.EEXIST):
                _check(rc, f"seccomp_arch_add({arch})")
        numbers: dict[str, int | None] = {}
        for rule in plan.rules:
            if rule.syscall not in numbers:
                numbers[rule.syscall] = syscall_number(rule.syscall)
            number = numbers[rule.syscall]
            if number is None:
                continue  # not a syscall of this architecture: skipped, as runc does
            conds = (arg_cmp * len(rule.conditions))(
                *[(c.arg, c.op, c.value, c.value_two) for c in rule.conditions]
            )
            rc = lib.seccomp_rule_add_array(ctx, rule.action, number, len(rule.conditions), conds)
            if rc != 0:
                raise SeccompError(
                    f"linux.seccomp: cannot add a rule for {rule.syscall}: {_err(rc)}"
                )
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return ctx


def compile_filter(config: Mapping[str, Any]) -> CompiledFilter:
    """Compile an OCI ``linux.seccomp`` object to the BPF program the kernel will run."""
    plan = plan_filter(config)
    lib, _ = _libseccomp()
    ctx = _context(plan)
    try:
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_CUR)
            program = os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    flags = 0
    for flag in plan.flags:
        flags |= _KERNEL_FLAGS[flag]
    return CompiledFilter(program, flags)


class _SockFprog(ctypes.Structure):
    """struct sock_fprog (linux/filter.h)."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc = ctypes.CDLL(None, use_errno=True)  # the running program: no file is opened
_libc.syscall.restype = ctypes.c_long
_seccomp_nr: int | None = _SYS_SECCOMP.get(os.uname().machine)


def _seccomp_syscall(flags: int, fprog: Any) -> tuple[int, int]:
    if _seccomp_nr is None:
        raise SeccompError(f"the seccomp syscall number of {os.uname().machine} is unknown")
    rc = int(_libc.syscall(_seccomp_nr, _SECCOMP_SET_MODE_FILTER, flags, fprog))
    return rc, (ctypes.get_errno() if rc == -1 else 0)


def supported_flags(flags: int) -> int:
    """The subset of SECCOMP_FILTER_FLAG_* this kernel knows (EFAULT on a NULL program)."""
    kept = 0
    for bit in _KERNEL_FLAGS.values():
        if flags & bit and _seccomp_syscall(bit, None)[1] == errno.EFAULT:
            kept |= bit
    return kept


def load_compiled(compiled: CompiledFilter) -> None:
    """Install a compiled filter in this process with seccomp(2).

    Safe after pivot_root into an untrusted rootfs: it imports nothing, opens no file and
    loads no library (all of that happened in ``prepare_filter``), so nothing from the image
    runs in the runtime's process.
    """
    program, flags = compiled
    if not program or len(program) % 8:
        raise SeccompError(f"seccomp program of {len(program)} bytes is not a BPF program")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    rc, err = _seccomp_syscall(flags, ctypes.byref(fprog))
    if rc > 0:
        raise SeccompError(f"cannot load the seccomp filter: thread {rc} cannot be synchronized")
    if err == errno.EACCES:
        raise SeccompError(
            "cannot load the seccomp filter: set no_new_privs first or keep CAP_SYS_ADMIN"
        )
    if err:
        raise SeccompError(f"cannot load the seccomp filter: {os.strerror(err)}")


def _sha256_hex(data: bytes) -> str:
    # the builtin module imports in microseconds, hashlib (OpenSSL) in milliseconds
    try:
        from _sha256 import sha256  # type: ignore[import-not-found]  # Python 3.11
    except ImportError:
        from hashlib import sha256
    return str(sha256(data).hexdigest())


def _library_identity() -> tuple[int, ...] | str:
    """Which libseccomp would compile, without loading it: a new build changes the key."""
    multiarch = getattr(sys.implementation, "_multiarch", "")
    for directory in (f"/usr/lib/{multiarch}", f"/lib/{multiarch}", "/usr/lib64", "/usr/lib"):
        try:
            st = os.stat(os.path.join(directory, "libseccomp.so.2"))
        except OSError:
            continue
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    lib, _ = _libseccomp()
    version = lib.seccomp_version().contents
    return f"{version.major}.{version.minor}.{version.micro}"


def _cache_key(config: Mapping[str, Any]) -> str:
    uname = os.uname()
    seed = repr((plan_filter(config), _library_identity(), uname.machine, uname.release))
    return _sha256_hex(seed.encode())


def prepare_filter(config: Mapping[str, Any], *, cache_dir: str | None = None) -> CompiledFilter:
    """Compile ``linux.seccomp`` (or take it from ``cache_dir``) for ``load_compiled``.

    Call it while the host's filesystem is still visible (before pivot_root): it loads
    libseccomp and reads the cache. Compiling a large profile (the default one, three
    architectures) takes libseccomp ~15 ms; with ``cache_dir`` (a directory only root can
    write, such as under the runtime's state root) later starts reuse the program.
    Flags this kernel lacks (LOG, SPEC_ALLOW on old kernels) are dropped with a warning.
    """
    compiled = compile_filter(config) if cache_dir is None else _cached(config, cache_dir)
    flags = supported_flags(compiled.flags)
    if flags != compiled.flags:
        _log().warning("seccomp flags %#x are not available in this kernel, ignored",
                       compiled.flags & ~flags)  # fmt: skip
        compiled = CompiledFilter(compiled.program, flags)
    return compiled


def _cached(config: Mapping[str, Any], cache_dir: str) -> CompiledFilter:
    path = os.path.join(cache_dir, f"seccomp-{_cache_key(config)}.bpf")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            program = f.read()
        return CompiledFilter(program, int.from_bytes(head, "little"))
    except OSError:
        pass
    compiled = compile_filter(config)
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(compiled.flags.to_bytes(4, "little") + compiled.program)
        os.rename(tmp, path)
    except OSError as exc:
        _log().warning("seccomp: cannot cache the compiled filter in %s: %s", cache_dir, exc)
    return compiled


def load_filter(config: Mapping[str, Any], *, cache_dir: str | None = None) -> None:
    """``prepare_filter`` then ``load_compiled``, for callers that still see the host's files.

    Never call it after pivot_root into a container's rootfs: it would dlopen
    ``libseccomp.so.2`` (and import modules) from the image. The container init calls
    ``prepare_filter`` before pivot_root and ``load_compiled`` right before execve.
    """
    load_compiled(prepare_filter(config, cache_dir=cache_dir))


def _err(rc: int) -> str:
    return os.strerror(-rc) if rc < 0 else f"error {rc}"


def _check(rc: int, op: str) -> None:
    if rc != 0:
        raise SeccompError(f"{op}: {_err(rc)}")


# ---------------------------------------------------------------------------------------
# The default profile for ``spec``


def default_profile(capabilities: Iterable[str] = (), machine: str | None = None) -> dict[str, Any]:
    """The containers-common default profile as an OCI ``linux.seccomp`` object.

    Entries conditional on capabilities follow the container's bounding set
    (``capabilities``), entries conditional on an architecture follow ``machine``
    (``uname -m``, default this host), as Podman renders the profile into a config.
    """
    import json  # only `spec` needs it

    with open(PROFILE_FILE) as f:
        profile = json.load(f)
    machine = machine or os.uname().machine
    oci_arch, go_arch = NATIVE_ARCH.get(machine, ("", machine))
    caps = set(capabilities)
    syscalls = []
    for entry in profile["syscalls"]:
        includes = entry.get("includes") or {}
        excludes = entry.get("excludes") or {}
        if not set(includes.get("caps", ())) <= caps:
            continue
        if includes.get("arches") and go_arch not in includes["arches"]:
            continue
        if caps & set(excludes.get("caps", ())) or go_arch in excludes.get("arches", ()):
            continue
        rule: dict[str, Any] = {"names": list(entry["names"]), "action": entry["action"]}
        if entry.get("args"):
            rule["args"] = [dict(a) for a in entry["args"]]
        if "errnoRet" in entry:
            rule["errnoRet"] = entry["errnoRet"]
        syscalls.append(rule)
    result: dict[str, Any] = {
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile["defaultErrnoRet"],
    }
    if oci_arch:
        result["architectures"] = [oci_arch, *profile["archMap"].get(oci_arch, [])]
    result["syscalls"] = syscalls
    return result


__all__ = [
    "ACTIONS",
    "FLAGS",
    "OPERATORS",
    "CompiledFilter",
    "FilterPlan",
    "Rule",
    "SeccompError",
    "compile_filter",
    "default_profile",
    "load_compiled",
    "load_filter",
    "plan_filter",
    "prepare_filter",
    "supported_flags",
    "syscall_number",
]
