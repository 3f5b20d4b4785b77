"""The cgroup attach warm-up: a no-op for the runtime's own cgroup, and it stops."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.root

PROBE = textwrap.dedent(
    """
    import os, time
    from pycontainers.runtime import cgroup_prewarm
    before = open("/proc/self/cgroup").read()
    cgroup_prewarm.start()
    time.sleep(0.05)
    threads_running = len(os.listdir("/proc/self/task"))
    cgroup_prewarm.stop()
    time.sleep(0.02)
    print(threads_running, len(os.listdir("/proc/self/task")),
          open("/proc/self/cgroup").read() == before)
    """
)


def test_warm_up_leaves_the_process_where_it_was_and_stops() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.split() == ["2", "1", "True"]
