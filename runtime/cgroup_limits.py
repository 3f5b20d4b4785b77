"""OCI ``linux.resources`` -> cgroup file writes for a v1 or v2 hierarchy (pure).

Loaded only when a config has limits: the start of a container without any skips it.
"""

from __future__ import annotations

from pycontainers.runtime.cgroup_layout import CgroupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


class Write(tuple[str, str, str, bool]):
    """One value for one cgroup file, owned by one controller."""

    __slots__ = ()

    def __new__(cls, controller: str, file: str, value: str, from_unified: bool = False) -> Write:
        return super().__new__(cls, (controller, file, value, from_unified))

    @property
    def controller(self) -> str:
        return self[0]

    @property
    def file(self) -> str:
        return self[1]

    @property
    def value(self) -> str:
        return self[2]

    @property
    def from_unified(self) -> bool:
        return self[3]


def cpu_shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], runc's linear mapping (runtime-spec)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000], as runc converts it."""
    if weight == 0:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(swap: int, memory: int) -> int | None:
    """OCI swap is memory+swap (v1 memsw); v2 memory.swap.max is swap alone. None = unset."""
    if memory == -1 and swap == 0:
        return -1
    if swap in (0, -1):
        return None if swap == 0 else -1
    if memory in (0, -1):
        raise CgroupError("linux.resources.memory.swap: a swap limit needs a memory limit")
    if swap < memory:
        raise CgroupError(
            f"linux.resources.memory.swap: {swap} is below the memory limit {memory} "
            "(swap counts memory plus swap)"
        )
    return swap - memory


def _int(section: Mapping[str, Any], name: str, where: str) -> int:
    value = section.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"linux.resources.{where}.{name}: expected an integer, got {value!r}")
    return value


def _v2_max(value: int) -> str:
    return "max" if value < 0 else str(value)


def _devnum(entry: Mapping[str, Any], where: str) -> str:
    try:
        return f"{int(entry['major'])}:{int(entry['minor'])}"
    except (KeyError, TypeError, ValueError) as exc:
        raise CgroupError(f"linux.resources.{where}: a device needs major and minor") from exc


def resource_writes(resources: Mapping[str, Any], version: int) -> list[Write]:
    """Translate OCI ``linux.resources`` into file writes for a v1 or v2 hierarchy, in order."""
    v2 = version == 2
    out: list[Write] = []
    memory = resources.get("memory") or {}
    if memory:
        limit = _int(memory, "limit", "memory")
        reservation = _int(memory, "reservation", "memory")
        swap = _int(memory, "swap", "memory")
        if v2:
            if limit:
                out.append(Write("memory", "memory.max", _v2_max(limit)))
            if reservation:
                out.append(Write("memory", "memory.low", _v2_max(reservation)))
            swap_v2 = swap_to_v2(swap, limit)
            if swap_v2 is not None:
                out.append(Write("memory", "memory.swap.max", _v2_max(swap_v2)))
        else:
            if limit:
                out.append(Write("memory", "memory.limit_in_bytes", str(limit)))
            if swap or limit == -1:
                out.append(Write("memory", "memory.memsw.limit_in_bytes", str(swap or -1)))
            if reservation:
                out.append(Write("memory", "memory.soft_limit_in_bytes", str(reservation)))
            if memory.get("swappiness") is not None:
                out.append(Write("memory", "memory.swappiness", str(memory["swappiness"])))
            if memory.get("disableOOMKiller"):
                out.append(Write("memory", "memory.oom_control", "1"))
    cpu = resources.get("cpu") or {}
    if cpu:
        shares = _int(cpu, "shares", "cpu")
        quota = _int(cpu, "quota", "cpu")
        period = _int(cpu, "period", "cpu")
        if v2:
            if shares:
                out.append(Write("cpu", "cpu.weight", str(cpu_shares_to_weight(shares))))
            if quota or period:
                text = str(quota) if quota > 0 else "max"
                if period:
                    text += f" {period}"
                out.append(Write("cpu", "cpu.max", text))
            if cpu.get("burst") is not None:
                out.append(Write("cpu", "cpu.max.burst", str(_int(cpu, "burst", "cpu"))))
        else:
            if shares:
                out.append(Write("cpu", "cpu.shares", str(shares)))
            if period:
                out.append(Write("cpu", "cpu.cfs_period_us", str(period)))
            if quota:
                out.append(Write("cpu", "cpu.cfs_quota_us", str(quota)))
            if cpu.get("burst") is not None:
                out.append(Write("cpu", "cpu.cfs_burst_us", str(_int(cpu, "burst", "cpu"))))
            if _int(cpu, "realtimePeriod", "cpu"):
                out.append(Write("cpu", "cpu.rt_period_us", str(cpu["realtimePeriod"])))
            if _int(cpu, "realtimeRuntime", "cpu"):
                out.append(Write("cpu", "cpu.rt_runtime_us", str(cpu["realtimeRuntime"])))
        if cpu.get("idle") is not None:
            out.append(Write("cpu", "cpu.idle", str(_int(cpu, "idle", "cpu"))))
        if cpu.get("cpus"):
            out.append(Write("cpuset", "cpuset.cpus", str(cpu["cpus"])))
        if cpu.get("mems"):
            out.append(Write("cpuset", "cpuset.mems", str(cpu["mems"])))
    pids = resources.get("pids") or {}
    if pids and _int(pids, "limit", "pids"):
        limit = _int(pids, "limit", "pids")
        out.append(Write("pids", "pids.max", str(limit) if limit > 0 else "max"))
    out += _block_io_writes(resources.get("blockIO") or {}, v2)
    for entry in resources.get("hugepageLimits") or []:
        size, limit = entry.get("pageSize"), entry.get("limit")
        if not size or limit is None:
            raise CgroupError("linux.resources.hugepageLimits: each entry needs pageSize and limit")
        name = f"hugetlb.{size}.max" if v2 else f"hugetlb.{size}.limit_in_bytes"
        out.append(Write("hugetlb", name, str(limit)))
    for name, value in (resources.get("unified") or {}).items() if v2 else ():
        if "/" in name or name.startswith("."):
            raise CgroupError(f"linux.resources.unified: {name!r} is not a cgroup file name")
        controller = name.split(".", 1)[0]
        controller = "" if controller == "cgroup" else controller
        out.append(Write(controller, name, str(value), from_unified=True))
    return out


def _block_io_writes(blkio: Mapping[str, Any], v2: bool) -> list[Write]:
    out: list[Write] = []
    weight = _int(blkio, "weight", "blockIO")
    if weight:
        if v2:
            out.append(Write("io", "io.weight", f"default {blkio_weight_to_io_weight(weight)}"))
        else:
            out.append(Write("blkio", "blkio.weight", str(weight)))
    if _int(blkio, "leafWeight", "blockIO") and not v2:
        out.append(Write("blkio", "blkio.leaf_weight", str(blkio["leafWeight"])))
    for entry in blkio.get("weightDevice") or []:
        dev = _devnum(entry, "blockIO.weightDevice")
        if entry.get("weight"):
            if v2:
                value = blkio_weight_to_io_weight(int(entry["weight"]))
                out.append(Write("io", "io.weight", f"{dev} {value}"))
            else:
                out.append(Write("blkio", "blkio.weight_device", f"{dev} {entry['weight']}"))
        if entry.get("leafWeight") and not v2:
            out.append(Write("blkio", "blkio.leaf_weight_device", f"{dev} {entry['leafWeight']}"))
    throttles = (
        ("throttleReadBpsDevice", "read_bps_device", "rbps"),
        ("throttleWriteBpsDevice", "write_bps_device", "wbps"),
        ("throttleReadIOPSDevice", "read_iops_device", "riops"),
        ("throttleWriteIOPSDevice", "write_iops_device", "wiops"),
    )
    for field, v1_file, v2_key in throttles:
        for entry in blkio.get(field) or []:
            dev = _devnum(entry, f"blockIO.{field}")
            rate = int(entry.get("rate", 0))
            if v2:
                out.append(Write("io", "io.max", f"{dev} {v2_key}={rate or 'max'}"))
            else:
                out.append(Write("blkio", f"blkio.throttle.{v1_file}", f"{dev} {rate}"))
    return out
