"""What a process sees from inside: user, capabilities, limits, env, mounts, devices.

Every probe runs the same bundle under pycontainers-runtime and Debian's runc (the
oracle): the output must match runc's and the value the config asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .conftest import BundleFactory, Runtime

pytestmark = pytest.mark.root

Edit = Callable[[dict[str, Any]], None]


def _process(**fields: Any) -> Edit:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["process"].update(fields)

    return edit


def _all_caps(names: list[str]) -> dict[str, list[str]]:
    return {
        k: list(names) for k in ("bounding", "effective", "inheritable", "permitted", "ambient")
    }


def _linux(**fields: Any) -> Edit:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"].update(fields)

    return edit


def _top(**fields: Any) -> Edit:
    def edit(cfg: dict[str, Any]) -> None:
        cfg.update(fields)

    return edit


def _both(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory, script: str, edit: Edit | None
) -> str:
    bundle = make_bundle(["sh", "-c", script], edit)
    mine = ours.run(bundle)
    theirs = runc.run(bundle)
    assert theirs.returncode == 0, f"runc failed (oracle): {theirs.stderr}"
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == theirs.stdout
    return mine.stdout


PROBES: dict[str, tuple[str, Edit | None, str]] = {
    "user and groups": (
        "id",
        _process(user={"uid": 1000, "gid": 1001, "additionalGids": [10, 20]}),
        "uid=1000 gid=1001 groups=10,20\n",
    ),
    "default capabilities and no_new_privs": (
        "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status",
        None,
        "CapInh:\t0000000000000000\nCapPrm:\t0000000020000420\nCapEff:\t0000000020000420\n"
        "CapBnd:\t0000000020000420\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n",
    ),
    "ambient capabilities for a non-root user": (
        "grep -E '^(CapEff|CapAmb|NoNewPrivs)' /proc/self/status",
        _process(
            user={"uid": 1000, "gid": 1000},
            capabilities=_all_caps(["CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            noNewPrivileges=False,
        ),
        "CapEff:\t0000000000000420\nCapAmb:\t0000000000000420\nNoNewPrivs:\t0\n",
    ),
    "rlimits": (
        "ulimit -n; ulimit -Hn",
        _process(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]),
        "123\n456\n",
    ),
    "env, cwd and default HOME": (
        'echo "$FOO|$HOME|$(pwd)"',
        _process(env=["PATH=/bin:/sbin", "FOO=bar baz"], cwd="/tmp"),
        "bar baz|/|/tmp\n",
    ),
    "umask": ("umask", _process(user={"uid": 0, "gid": 0, "umask": 0o027}), "0027\n"),
    "oom score": ("cat /proc/self/oom_score_adj", _process(oomScoreAdj=321), "321\n"),
    "hostname and domainname": (
        "hostname; cat /proc/sys/kernel/domainname",
        _top(hostname="box", domainname="example.org"),
        "box\nexample.org\n",
    ),  # runc 1.1 ignores domainname (added in 1.2): checked against the config only
    "pid namespace": ("echo $$; ps -o pid,comm >/dev/shm/ps; wc -l </dev/shm/ps", None, "1\n3\n"),
    "default devices": (
        "cd /dev && stat -c '%n %F %t:%T %a' null zero full random urandom tty"
        " && for l in ptmx fd stdin stdout stderr; do readlink $l; done",
        None,
        "null character special file 1:3 666\nzero character special file 1:5 666\n"
        "full character special file 1:7 666\nrandom character special file 1:8 666\n"
        "urandom character special file 1:9 666\ntty character special file 5:0 666\n"
        "pts/ptmx\n/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n",
    ),
    "masked paths are empty": (
        "wc -c < /proc/timer_list; wc -c < /proc/keys; ls -A /sys/firmware | wc -l;"
        " ls -A /proc/acpi | wc -l",
        None,
        "0\n0\n0\n0\n",
    ),
    "readonly paths and root are unwritable": (
        "echo 1 2>&1 >/proc/sys/kernel/domainname | sed 's/.*: //';"
        " touch /newfile 2>&1 | sed 's/.*: //'; touch /dev/shm/ok && echo shm-writable",
        None,
        "Read-only file system\nRead-only file system\nshm-writable\n",
    ),
    "mount table": (
        'awk \'$2 ~ /^\\/(proc|dev|sys)/ || $2 == "/" {split($4, o, ",");'
        " print $2, $3, o[1]}' /proc/mounts | grep -v '^/sys/fs/cgroup/' | sort",
        None,
        "",  # compared with runc only (the root's fs type depends on the host)
    ),
    "tmpfs and bind mount options": (
        "grep -E ' /(scratch|data) ' /proc/mounts"
        " | awk '{split($4, o, \",\"); print $2, $3, o[1]}';"
        " grep ' /scratch ' /proc/mounts | grep -o 'size=64k,mode=1700';"
        " touch /data/x 2>&1 | sed 's/.*: //'",
        _top(
            mounts=[
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {
                    "destination": "/scratch",
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": ["nosuid", "nodev", "size=64k", "mode=1700"],
                },
                {
                    "destination": "/data",
                    "type": "bind",
                    "source": "/etc",
                    "options": ["rbind", "ro"],
                },
            ]
        ),
        "/scratch tmpfs rw\n/data ext4 ro\nsize=64k,mode=1700\nRead-only file system\n",
    ),
    "linux.devices": (
        "stat -c '%n %F %t:%T %a %u:%g' /dev/fuse /dev/loop-control",
        _linux(
            devices=[
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                 "fileMode": 0o600, "uid": 1, "gid": 2},
                {"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237},
            ]
        ),
        "/dev/fuse character special file a:e5 600 1:2\n"
        "/dev/loop-control character special file a:ed 666 0:0\n",
    ),
    "sysctl in the new network namespace": (
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ping_group_range",
        _linux(sysctl={"net.ipv4.ip_forward": "1", "net.ipv4.ping_group_range": "0 0"}),
        "1\n0\t0\n",
    ),
    "private root propagation": (
        "awk '$5 == \"/\" {print ($7 ~ /shared/) ? \"shared\" : \"not-shared\"}'"
        " /proc/self/mountinfo",
        _linux(rootfsPropagation="private"),
        "not-shared\n",
    ),
    "per-mount propagation": (
        "awk '$5 ~ /^\\/(sh|pr)$/ {print $5, ($7 ~ /^shared/) ? \"shared\" : \"private\"}'"
        " /proc/self/mountinfo | sort",
        _top(
            mounts=[
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/sh", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]},
                {"destination": "/pr", "type": "tmpfs", "source": "tmpfs", "options": ["private"]},
            ]
        ),
        "/pr private\n/sh shared\n",
    ),
    "cgroup mount shows the container's own cgroup": (
        "for h in pids memory systemd; do wc -l < /sys/fs/cgroup/$h/cgroup.procs; done",
        None,
        "2\n2\n2\n",  # sh and wc: the container's cgroup, not the host's root
    ),
    "cgroup mount in a cgroup namespace": (
        "for h in pids memory systemd; do wc -l < /sys/fs/cgroup/$h/cgroup.procs; done;"
        " grep -vc ':/$' /proc/self/cgroup || true",  # every path is the namespace's root
        lambda cfg: cfg["linux"]["namespaces"].append({"type": "cgroup"}),
        "2\n2\n2\n0\n",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(PROBES))
def test_probe_matches_config_and_runc(
    name: str, ours: Runtime, runc: Runtime, make_bundle: BundleFactory
) -> None:
    script, edit, expected = PROBES[name]
    if name == "hostname and domainname":
        done = ours.run(make_bundle(["sh", "-c", script], edit))
        assert done.returncode == 0, done.stderr
        assert done.stdout == expected
        return
    out = _both(ours, runc, make_bundle, script, edit)
    if expected:
        assert out == expected
    else:
        assert out


def test_seccomp_profile_blocks_a_syscall_like_runc(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory
) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
            ],
        }

    out = _both(ours, runc, make_bundle, "mkdir /dev/shm/x 2>&1 | sed 's/.*: //'; echo ok", edit)
    assert out == "Permission denied\nok\n"


def test_default_spec_profile_runs_a_container(ours: Runtime, make_bundle: BundleFactory) -> None:
    from pycontainers.runtime import specgen

    profile = specgen.default_spec()["linux"]["seccomp"]  # type: ignore[index]
    bundle = make_bundle(["sh", "-c", "grep Seccomp: /proc/self/status; ls /bin/busybox"],
                         lambda cfg: cfg["linux"].update(seccomp=profile))  # fmt: skip
    done = ours.run(bundle)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Seccomp:\t2\n/bin/busybox\n"  # filter mode, and a program runs


def test_seccomp_without_no_new_privileges_like_runc(
    ours: Runtime, runc: Runtime, make_bundle: BundleFactory
) -> None:
    """Without no_new_privs, seccomp(2) needs CAP_SYS_ADMIN: the filter goes in before the
    capabilities are dropped (as runc does), or every ordinary container would fail."""
    from pycontainers.runtime import specgen

    profile = specgen.default_spec()["linux"]["seccomp"]  # type: ignore[index]

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["seccomp"] = profile
        cfg["process"]["noNewPrivileges"] = False
        cfg["process"]["user"] = {"uid": 65534, "gid": 65534}

    script = "grep -E '^(Seccomp|NoNewPrivs|Uid|CapEff):' /proc/self/status"
    out = _both(ours, runc, make_bundle, script, edit)
    assert "Seccomp:\t2\n" in out
    assert "NoNewPrivs:\t0\n" in out
