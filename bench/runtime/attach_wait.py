"""Probe: how long a move into a cgroup waits, by the pause since the previous move.

Run as root: .venv/bin/python bench/runtime/attach_wait.py

Writes this process's own pid into its own pids cgroup (a move that changes nothing but
still takes the kernel's cgroup_threadgroup_rwsem for writing) after pauses of 200 ms
down to 5 ms, 8 times each, and prints the median and worst write time per pause. A
long write after a long pause is the RCU grace period every runtime's first cgroup
attach waits for (see pycontainers/runtime/cgroup_prewarm.py).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

PAUSES_MS = (200, 100, 50, 30, 20, 10, 5)


def main() -> int:
    if os.geteuid() != 0:
        sys.exit("run as root")
    with open("/proc/self/cgroup") as f:
        own = next(
            line.split(":", 2)[2].strip()
            for line in f
            if ":pids:" in line or line.startswith("0::")
        )
    mount = "/sys/fs/cgroup/pids" if os.path.isdir("/sys/fs/cgroup/pids") else "/sys/fs/cgroup"
    fd = os.open(f"{mount}{own.rstrip('/')}/cgroup.procs", os.O_WRONLY)
    pid = str(os.getpid()).encode()
    for pause in PAUSES_MS:
        times = []
        for _ in range(8):
            time.sleep(pause / 1000)
            t0 = time.perf_counter()
            os.write(fd, pid)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"after {pause:3d} ms: write median {statistics.median(times):6.2f} ms,"
              f" worst {max(times):6.2f} ms")  # fmt: skip
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
