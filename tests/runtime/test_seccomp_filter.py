"""Seccomp filters loaded through libseccomp, proven in forked children on the real kernel.

Each probe runs in a child that sets no_new_privs and loads the filter, as the container init
does right before execve; the child reports what the kernel answered through a pipe.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from pycontainers.runtime import seccomp
from pycontainers.runtime.seccomp import SeccompError, default_profile, load_filter, plan_filter

PR_SET_NO_NEW_PRIVS = 38
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def raw_syscall(name: str, *args: int | bytes | None) -> int:
    """Call a syscall by name; return 0/result, or -errno."""
    number = seccomp.syscall_number(name)
    assert number is not None and number >= 0, name
    result = libc.syscall(number, *args)
    return -ctypes.get_errno() if result == -1 else int(result)


def errno_of(call: Callable[[], object]) -> int:
    try:
        call()
    except OSError as exc:
        return exc.errno or 0
    return 0


def filtered(config: Mapping[str, Any], probe: Callable[[], Any]) -> dict[str, Any]:
    """Run ``probe`` in a child under the filter; {"ok": result} or {"signal": n}."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
            load_filter(config)
            out = {"ok": probe()}
        except BaseException:
            out = {"error": traceback.format_exc()}
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    result = json.loads(data)
    if "error" in result:
        pytest.fail("the filtered child failed:\n" + result["error"])
    return dict(result)


def allow_all_but(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules), **extra}


def test_blocked_syscall_returns_exactly_the_configured_errno(tmp_path: Path) -> None:
    config = allow_all_but(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EREMOTEIO}
    )

    def probe() -> dict[str, Any]:
        return {
            "mkdir": errno_of(lambda: os.mkdir(tmp_path / "blocked")),
            "cwd": os.getcwd(),
            "write": errno_of(lambda: (tmp_path / "allowed").write_text("x")),
        }

    out = filtered(config, probe)["ok"]
    assert out == {"mkdir": errno.EREMOTEIO, "cwd": os.getcwd(), "write": 0}
    assert not (tmp_path / "blocked").exists()
    assert (tmp_path / "allowed").read_text() == "x"


def test_errno_action_without_errno_ret_is_eperm() -> None:
    config = allow_all_but({"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"})
    assert filtered(config, lambda: errno_of(os.getcwd))["ok"] == errno.EPERM


def test_kill_process_action_kills_with_sigsys() -> None:
    config = allow_all_but({"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"})
    assert filtered(config, os.uname) == {"signal": signal.SIGSYS}


def test_argument_filters_and_or_and_masked_eq(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.write_text("data")
    config = allow_all_but(
        # AF_INET or AF_INET6 (two conditions on the same argument: one rule each)
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EAFNOSUPPORT,
            "args": [
                {"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": socket.AF_INET6, "op": "SCMP_CMP_EQ"},
            ],
        },
        # openat(dirfd, path, flags, mode) with flags & O_CREAT == O_CREAT
        {
            "names": ["openat", "open"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EROFS,
            "args": [
                {"index": 2, "value": os.O_CREAT, "valueTwo": os.O_CREAT,
                 "op": "SCMP_CMP_MASKED_EQ"},
            ],
        },
    )  # fmt: skip

    def probe() -> dict[str, int]:
        return {
            "inet": errno_of(lambda: socket.socket(socket.AF_INET).close()),
            "inet6": errno_of(lambda: socket.socket(socket.AF_INET6).close()),
            "unix": errno_of(lambda: socket.socket(socket.AF_UNIX).close()),
            "read": errno_of(lambda: existing.read_text()),
            "create": errno_of(lambda: (tmp_path / "new").write_text("x")),
        }

    out = filtered(config, probe)["ok"]
    assert out == {
        "inet": errno.EAFNOSUPPORT,
        "inet6": errno.EAFNOSUPPORT,
        "unix": 0,
        "read": 0,
        "create": errno.EROFS,
    }
    assert not (tmp_path / "new").exists()


def test_conditions_on_distinct_arguments_must_all_hold() -> None:
    config = allow_all_but(
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EINVAL,
            "args": [
                {"index": 0, "value": socket.AF_UNIX, "op": "SCMP_CMP_EQ"},
                # Python adds SOCK_CLOEXEC to the type: compare the low bits only
                {"index": 1, "value": 0xF, "valueTwo": socket.SOCK_DGRAM,
                 "op": "SCMP_CMP_MASKED_EQ"},
            ],
        }
    )  # fmt: skip

    def probe() -> list[int]:
        return [
            errno_of(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).close()),
            errno_of(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()),
        ]

    assert filtered(config, probe)["ok"] == [errno.EINVAL, 0]


def test_unknown_syscall_names_are_skipped(tmp_path: Path) -> None:
    config = allow_all_but(
        {"names": ["no_such_syscall", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
    )
    assert filtered(config, lambda: errno_of(lambda: os.mkdir(tmp_path / "d")))["ok"] == 1


def mkdir_from_a_running_thread(target: Path, flags: list[str]) -> int:
    """Load a mkdir-blocking filter while another thread already runs; that thread mkdirs."""
    config = allow_all_but(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 121},
        flags=flags,
    )

    def probe() -> int:
        result: list[int] = []
        loaded = threading.Event()

        def worker() -> None:
            loaded.wait()
            result.append(errno_of(lambda: os.mkdir(target)))

        thread = threading.Thread(target=worker)
        thread.start()
        load_filter(config)
        loaded.set()
        thread.join()
        return result[0]

    return int(filtered(allow_all_but(), probe)["ok"])


def test_tsync_flag_filters_threads_that_already_run(tmp_path: Path) -> None:
    assert mkdir_from_a_running_thread(tmp_path / "a", ["SECCOMP_FILTER_FLAG_TSYNC"]) == 121
    assert not (tmp_path / "a").exists()
    assert mkdir_from_a_running_thread(tmp_path / "b", []) == 0  # only the loading thread
    assert (tmp_path / "b").is_dir()


def test_log_flag_is_accepted() -> None:
    config = allow_all_but(
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5},
        flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    )
    assert filtered(config, lambda: errno_of(os.getcwd))["ok"] == 5


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"defaultAction": "SCMP_ACT_BOGUS"}, r"defaultAction: unknown action 'SCMP_ACT_BOGUS'"),
        (
            allow_all_but({"names": ["uname"], "action": "ALLOW"}),
            r"syscalls\[0\]\.action: unknown action 'ALLOW'",
        ),
        (
            allow_all_but({"names": ["uname"], "action": "SCMP_ACT_NOTIFY"}),
            "SCMP_ACT_NOTIFY .* not supported",
        ),
        (
            allow_all_but(
                {
                    "names": ["uname"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 6, "op": "SCMP_CMP_EQ"}],
                }
            ),
            r"syscalls\[0\]\.args\[0\]\.index: 6 is not a syscall argument",
        ),
        (
            allow_all_but(
                {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "EQ"}]}
            ),
            r"args\[0\]\.op: unknown operator 'EQ'",
        ),
        (allow_all_but(flags=["SECCOMP_FILTER_FLAG_BOGUS"]), r"flags\[0\]: unknown flag"),
        (allow_all_but(architectures=["x86_64"]), r"architectures\[0\]: unknown architecture"),
        (
            allow_all_but({"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1}),
            "errnoRet must be an integer 0-65535",
        ),
        (allow_all_but({"names": [], "action": "SCMP_ACT_ERRNO"}), r"syscalls\[0\]\.names"),
    ],
)
def test_bad_configs_are_refused_with_the_field_named(config: dict[str, Any], message: str) -> None:
    with pytest.raises(SeccompError, match=message):
        plan_filter(config)


def test_unknown_architecture_name_is_refused_before_anything_is_loaded() -> None:
    # resolving happens before seccomp_load, so the test process itself stays unfiltered
    with pytest.raises(SeccompError, match="unknown architecture 'SCMP_ARCH_NOPE'"):
        load_filter(allow_all_but(architectures=["SCMP_ARCH_NOPE"]))


def test_rules_repeating_the_default_action_are_dropped() -> None:
    plan = plan_filter(allow_all_but({"names": ["uname"], "action": "SCMP_ACT_ALLOW"}))
    assert plan.rules == ()


# --- the default profile (containers-common's), as `spec` writes it ---------------------

PODMAN_DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
    "CAP_SYS_CHROOT",
]  # fmt: skip


def actions_for(profile: Mapping[str, Any], name: str) -> list[tuple[str, int | None]]:
    return [
        (rule["action"], rule.get("errnoRet"))
        for rule in profile["syscalls"]
        if name in rule["names"] and not rule.get("args")
    ]


def test_default_profile_follows_capabilities_and_architecture() -> None:
    profile = default_profile(PODMAN_DEFAULT_CAPS, machine="x86_64")
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["defaultErrnoRet"] == errno.ENOSYS
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert actions_for(profile, "bpf") == [("SCMP_ACT_ERRNO", errno.EPERM)]
    assert actions_for(profile, "chroot") == [("SCMP_ACT_ALLOW", None)]
    assert actions_for(profile, "arch_prctl") == [("SCMP_ACT_ALLOW", None)]
    assert actions_for(profile, "userfaultfd") == [("SCMP_ACT_ERRNO", errno.EPERM)]
    assert actions_for(profile, "add_key") == []  # not listed: the default (ENOSYS)

    admin = default_profile([*PODMAN_DEFAULT_CAPS, "CAP_SYS_ADMIN"], machine="x86_64")
    assert actions_for(admin, "bpf") == [("SCMP_ACT_ALLOW", None)]
    arm = default_profile(PODMAN_DEFAULT_CAPS, machine="aarch64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert actions_for(arm, "arch_prctl") == []
    assert actions_for(arm, "set_tls") == [("SCMP_ACT_ALLOW", None)]
    assert json.loads(json.dumps(profile)) == profile
    plan_filter(profile)  # valid as an OCI linux.seccomp object


def test_default_profile_refuses_what_it_should_with_the_right_errno() -> None:
    profile = default_profile(PODMAN_DEFAULT_CAPS)

    def probe() -> dict[str, int]:
        netlink_audit = (socket.AF_NETLINK, socket.SOCK_RAW, 9)
        return {
            "getpid": int(raw_syscall("getpid") > 0),
            "add_key": raw_syscall("add_key", b"user", b"k", b"v", 1, -1),
            "userfaultfd": raw_syscall("userfaultfd", 0),
            "bpf": raw_syscall("bpf", 0, None, 0),
            "ptrace": raw_syscall("ptrace", 0, 0, 0, 0),
            "kexec_load": raw_syscall("kexec_load", 0, 0, None, 0),
            "audit_socket": errno_of(lambda: socket.socket(*netlink_audit).close()),
            "unix_socket": errno_of(lambda: socket.socket(socket.AF_UNIX).close()),
        }

    assert filtered(profile, probe)["ok"] == {
        "getpid": 1,
        "add_key": -errno.ENOSYS,
        "userfaultfd": -errno.EPERM,
        "bpf": -errno.EPERM,
        "ptrace": -errno.EPERM,
        "kexec_load": -errno.EPERM,
        "audit_socket": errno.EINVAL,
        "unix_socket": 0,
    }


@pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox-static")
def test_a_busybox_shell_works_under_the_default_profile(tmp_path: Path) -> None:
    script = (
        f"cd {tmp_path} && mkdir d && echo hello > d/f && cat d/f && ls d && "
        "ln -s f d/l && readlink d/l && rm -r d && echo $(( 6 * 7 )) && "
        "busybox sleep 0 & wait; echo done"
    )
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            load_filter(default_profile(PODMAN_DEFAULT_CAPS))
            os.execv("/bin/busybox", ["sh", "-c", script])
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as f:
        output = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert output.split() == ["hello", "f", "f", "42", "done"]


def test_without_no_new_privs_root_may_load_and_others_get_a_clear_error() -> None:
    """libseccomp is told not to set no_new_privs itself: that is process.noNewPrivileges."""
    script = (
        "import ctypes, os, sys\n"
        "from pycontainers.runtime.seccomp import SeccompError, load_filter\n"
        "try:\n"
        "    load_filter({'defaultAction': 'SCMP_ACT_ALLOW',"
        " 'syscalls': [{'names': ['getcwd'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 7}]})\n"
        "except SeccompError as exc:\n"
        "    print('error:', exc); sys.exit(0)\n"
        "nnp = [l for l in open('/proc/self/status') if l.startswith('NoNewPrivs')][0].split()[1]\n"
        "try:\n"
        "    os.getcwd()\n"
        "except OSError as exc:\n"
        "    print('loaded', exc.errno, 'nnp', nnp)\n"
    )
    as_root = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert as_root.stdout.strip() == "loaded 7 nnp 0", as_root.stderr
    as_nobody = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-c", script],
        capture_output=True, text=True, timeout=60, check=False, cwd="/",
    )  # fmt: skip
    assert as_nobody.stdout.strip() == (
        "error: cannot load the seccomp filter: set no_new_privs first or keep CAP_SYS_ADMIN"
    ), as_nobody.stderr


def test_a_cached_compiled_filter_is_reused_and_still_filters(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    config = allow_all_but(
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOTSUP},
        flags=["SECCOMP_FILTER_FLAG_TSYNC"],
    )

    def getcwd_errno_under(config: dict[str, Any]) -> int:
        def probe() -> int:
            load_filter(config, cache_dir=str(cache))
            return errno_of(os.getcwd)

        return int(filtered(allow_all_but(), probe)["ok"])

    assert getcwd_errno_under(config) == errno.ENOTSUP
    [entry] = list(cache.iterdir())
    assert entry.name.startswith("seccomp-") and entry.suffix == ".bpf"
    first = entry.read_bytes()
    assert int.from_bytes(first[:4], "little") == 1  # SECCOMP_FILTER_FLAG_TSYNC
    assert len(first[4:]) % 8 == 0
    assert getcwd_errno_under(config) == errno.ENOTSUP
    assert list(cache.iterdir()) == [entry] and entry.read_bytes() == first
    changed = {**config, "syscalls": [{**config["syscalls"][0], "errnoRet": errno.EXDEV}]}
    assert getcwd_errno_under(changed) == errno.EXDEV
    assert len(list(cache.iterdir())) == 2


def test_compiled_program_is_what_libseccomp_exports() -> None:
    compiled = seccomp.compile_filter(default_profile(PODMAN_DEFAULT_CAPS))
    assert compiled.flags == 0
    assert len(compiled.program) % 8 == 0 and len(compiled.program) // 8 < 4096  # BPF_MAXINSNS
    with pytest.raises(SeccompError, match="not a BPF program"):
        seccomp.load_compiled(seccomp.CompiledFilter(b"\0" * 5, 0))


def test_a_prepared_filter_loads_inside_an_empty_root(tmp_path: Path) -> None:
    """After pivot_root the host's libraries and Python modules are gone: loading must not
    need them (nor pick up the image's copies)."""
    empty = tmp_path / "empty-root"
    empty.mkdir()
    config = allow_all_but(
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOLINK}
    )
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.close(r)
            compiled = seccomp.prepare_filter(config)
            os.chroot(empty)
            os.chdir("/")
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            seccomp.load_compiled(compiled)
            os.write(w, str(errno_of(os.getcwd)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        answer = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert answer == str(errno.ENOLINK)


def test_this_kernel_knows_the_filter_flags() -> None:
    assert seccomp.supported_flags(0b111) == 0b111
    assert seccomp.supported_flags(0) == 0
