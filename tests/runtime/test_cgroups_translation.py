"""linux.resources -> cgroup files, and layout detection from mountinfo: pure, no root.

The mountinfo texts are real ones: this host's (hybrid), a pure cgroup v2 host, and the
read-only v1 view systemd-nspawn gives a container.
"""

from __future__ import annotations

import os

import pytest

from pycontainers.runtime import cgroup_devices, cgroup_layout, cgroups
from pycontainers.runtime.cgroup_layout import (
    UNIFIED,
    CgroupError,
    parse_mountinfo,
    parse_proc_cgroup,
    systemd_style_path,
)
from pycontainers.runtime.cgroup_limits import (
    Write,
    blkio_weight_to_io_weight,
    cpu_shares_to_weight,
    resource_writes,
    swap_to_v2,
)

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = """\
9:name=systemd:/
8:pids:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
"""
V2_MOUNTINFO = """\
24 1 0:22 / / rw - ext4 /dev/vda1 rw
35 24 0:30 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""
# systemd-nspawn on a hybrid host: v1 controllers bound read-only over the writable ones,
# the container's own subtree of name=systemd and unified writable.
NSPAWN_MOUNTINFO = """\
500 499 0:80 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
501 500 0:35 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
502 501 0:35 / /sys/fs/cgroup/memory ro,relatime - cgroup cgroup rw,memory
503 500 0:29 / /sys/fs/cgroup/cpu,cpuacct ro,relatime - cgroup cgroup rw,cpu,cpuacct
504 500 0:37 /pyc-sbx-1/payload /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
505 500 0:38 /pyc-sbx-1/payload /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
"""


def by_key(hierarchies: list[cgroup_layout.Hierarchy]) -> dict[str, cgroup_layout.Hierarchy]:
    return {h.key: h for h in hierarchies}


def test_hybrid_layout_lists_v1_controllers_named_systemd_and_unified() -> None:
    found = by_key(parse_mountinfo(HYBRID_MOUNTINFO, parse_proc_cgroup(HYBRID_CGROUP)))
    assert sorted(found) == ["cpu", "cpuacct", "memory", "name=systemd", "pids", UNIFIED]
    assert found["memory"].own == "/process_api/abc"
    assert found[UNIFIED].version == 2 and found["pids"].version == 1
    assert (
        found["memory"].dir_of("/process_api/abc/c1") == "/sys/fs/cgroup/memory/process_api/abc/c1"
    )
    assert cgroup_layout.Layout(tuple(found.values())).mode == "hybrid"


def test_pure_v2_layout() -> None:
    found = parse_mountinfo(V2_MOUNTINFO, parse_proc_cgroup("0::/system.slice/x.service\n"))
    assert [(h.key, h.mountpoint, h.own) for h in found] == [
        (UNIFIED, "/sys/fs/cgroup", "/system.slice/x.service")
    ]
    assert cgroup_layout.Layout(tuple(found)).mode == "unified"


def test_read_only_bind_over_a_hierarchy_wins_and_mount_root_is_stripped() -> None:
    own = parse_proc_cgroup(
        "2:name=systemd:/pyc-sbx-1/payload/init.scope\n0::/pyc-sbx-1/payload/init.scope\n"
    )
    found = by_key(parse_mountinfo(NSPAWN_MOUNTINFO, own))
    assert found["memory"].readonly and found["cpu,cpuacct"].readonly
    assert not found["name=systemd"].readonly and not found[UNIFIED].readonly
    assert (
        found[UNIFIED].dir_of("/pyc-sbx-1/payload/init.scope/c1")
        == "/sys/fs/cgroup/unified/init.scope/c1"
    )


def test_a_tmpfs_mounted_over_the_cgroup_root_hides_what_was_below() -> None:
    covered = HYBRID_MOUNTINFO + "90 23 0:99 / /sys/fs/cgroup rw - tmpfs view rw\n"
    covered += "91 90 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert [h.key for h in parse_mountinfo(covered, {})] == ["memory"]


def test_this_hosts_layout_matches_its_mounts() -> None:
    layout = cgroups.detect_layout()
    with open("/proc/self/mounts") as f:
        kinds = {line.split()[2] for line in f}
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        assert layout.mode == "unified"
    elif "cgroup2" in kinds:
        assert layout.mode == "hybrid"
    else:
        assert layout.mode == "legacy"


@pytest.mark.parametrize(("shares", "weight"), [(0, 0), (2, 1), (1024, 39), (262144, 10000)])
def test_cpu_shares_convert_to_weight_as_runc_does(shares: int, weight: int) -> None:
    assert cpu_shares_to_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(10, 1), (500, 4950), (1000, 10000)])
def test_blkio_weight_converts_to_io_weight_as_runc_does(blkio: int, io: int) -> None:
    assert blkio_weight_to_io_weight(blkio) == io


def test_swap_is_memory_plus_swap_on_v1_and_swap_alone_on_v2() -> None:
    assert swap_to_v2(swap=96, memory=64) == 32
    assert swap_to_v2(swap=0, memory=64) is None
    assert swap_to_v2(swap=-1, memory=64) == -1
    assert swap_to_v2(swap=0, memory=-1) == -1
    with pytest.raises(CgroupError, match="below the memory limit"):
        swap_to_v2(swap=32, memory=64)
    with pytest.raises(CgroupError, match="needs a memory limit"):
        swap_to_v2(swap=32, memory=0)


RESOURCES = {
    "memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
    "pids": {"limit": 16},
    "blockIO": {
        "weight": 500,
        "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
    },
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
}


def test_v1_files() -> None:
    assert resource_writes(RESOURCES, 1) == [
        Write("memory", "memory.limit_in_bytes", "67108864"),
        Write("memory", "memory.memsw.limit_in_bytes", "100663296"),
        Write("memory", "memory.soft_limit_in_bytes", "33554432"),
        Write("cpu", "cpu.shares", "512"),
        Write("cpu", "cpu.cfs_period_us", "100000"),
        Write("cpu", "cpu.cfs_quota_us", "50000"),
        Write("cpuset", "cpuset.cpus", "0"),
        Write("cpuset", "cpuset.mems", "0"),
        Write("pids", "pids.max", "16"),
        Write("blkio", "blkio.weight", "500"),
        Write("blkio", "blkio.throttle.read_bps_device", "254:0 1048576"),
        Write("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
    ]


def test_v2_files() -> None:
    assert resource_writes(RESOURCES, 2) == [
        Write("memory", "memory.max", "67108864"),
        Write("memory", "memory.low", "33554432"),
        Write("memory", "memory.swap.max", "33554432"),
        Write("cpu", "cpu.weight", "20"),
        Write("cpu", "cpu.max", "50000 100000"),
        Write("cpuset", "cpuset.cpus", "0"),
        Write("cpuset", "cpuset.mems", "0"),
        Write("pids", "pids.max", "16"),
        Write("io", "io.weight", "default 4950"),
        Write("io", "io.max", "254:0 rbps=1048576"),
        Write("hugetlb", "hugetlb.2MB.max", "4194304"),
    ]


def test_unlimited_values() -> None:
    unlimited = {"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": -1}}
    assert resource_writes(unlimited, 2) == [
        Write("memory", "memory.max", "max"),
        Write("memory", "memory.swap.max", "max"),
        Write("cpu", "cpu.max", "max"),
        Write("pids", "pids.max", "max"),
    ]
    assert Write("memory", "memory.memsw.limit_in_bytes", "-1") in resource_writes(unlimited, 1)


def test_unified_settings_go_to_v2_only_and_must_be_file_names() -> None:
    ws = resource_writes({"unified": {"memory.high": "1G"}}, 2)
    assert ws == [Write("memory", "memory.high", "1G", from_unified=True)]
    assert resource_writes({"unified": {"memory.high": "1G"}}, 1) == []
    with pytest.raises(CgroupError, match="not a cgroup file name"):
        resource_writes({"unified": {"../../etc/passwd": "x"}}, 2)


def test_bad_values_name_the_field() -> None:
    with pytest.raises(CgroupError, match=r"linux\.resources\.memory\.limit: expected an integer"):
        resource_writes({"memory": {"limit": "64M"}}, 1)
    with pytest.raises(CgroupError, match="pageSize and limit"):
        resource_writes({"hugepageLimits": [{"limit": 1}]}, 2)


def test_device_rules() -> None:
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3},
    ]
    assert cgroup_devices.device_rule_writes(rules) == [
        Write("devices", "devices.deny", "a"),
        Write("devices", "devices.allow", "c 1:3 rwm"),
    ]


def test_systemd_style_cgroups_path() -> None:
    assert systemd_style_path("system.slice:pyc:web") == "/system.slice/pyc-web.scope"
    assert systemd_style_path("a-b.slice:x:y") == "/a.slice/a-b.slice/x-y.scope"


def test_bad_container_ids_and_paths_are_refused() -> None:
    with pytest.raises(CgroupError, match="cannot name a cgroup"):
        cgroups.manager_for(None, "../x", rootless=False)
    with pytest.raises(CgroupError, match=r"'\.\.' is not allowed"):
        cgroups.manager_for("/a/../../b", "x", rootless=False)


def test_device_rules_replay_like_the_v1_controller() -> None:
    deny_all = {"allow": False, "access": "rwm"}
    null = {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    assert cgroup_devices.device_exceptions([]) == (True, [])
    assert cgroup_devices.device_exceptions([deny_all, null]) == (False, [("c", 1, 3, 7)])
    # a rule agreeing with the default takes access away from an identical exception
    no_write = {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}
    assert cgroup_devices.device_exceptions([deny_all, null, no_write]) == (False, [("c", 1, 3, 3)])
    # "a" resets; wildcards are None
    any_char_mknod = {"allow": False, "type": "c", "access": "m"}
    assert cgroup_devices.device_exceptions([null, {"allow": True}, any_char_mknod]) == (
        True,
        [("c", None, None, 1)],
    )
    with pytest.raises(CgroupError, match="unknown device type 'x'"):
        cgroup_devices.device_exceptions([{"allow": True, "type": "x"}])
    with pytest.raises(CgroupError, match="unknown access 'rx'"):
        cgroup_devices.device_exceptions([{"allow": True, "type": "c", "access": "rx"}])
