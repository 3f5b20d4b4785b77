"""Pay the kernel's first-attach wait for cgroups in parallel with the rest of `create`.

Moving a process into a cgroup (a write to ``cgroup.procs``, in any hierarchy, v1 or v2)
takes the kernel's global ``cgroup_threadgroup_rwsem`` for writing. When no writer came
by recently, that first waits for an RCU grace period (the percpu rwsem switching
readers to its slow path): 10-15 ms on this host, paid by runc and crun too. Writers
arriving within about a grace period after the previous one do not wait again.

So the runtime starts a thread that rewrites its own pid into its own cgroup (a move
that changes nothing), and repeats that every 2 ms (each time without the wait) until
the process that needs the lock warm has been moved (or forked). The writer holds the
cgroup mutex while it waits, which a cgroup mkdir needs too. So where the runtime forks
the init directly and makes the directories after the fork, beside the init's setup,
the thread starts as early as it can (foreground `run` and `exec`: as the command
starts; `create`: once the config is read); through an intermediate child, which
needs the directories first, right after they are made. It is a hint only: every error
is ignored, and it gives up after 0.5 s.
"""

from __future__ import annotations

import os
import time

# where a hierarchy of /proc/self/cgroup is usually mounted (v2 line first: one write is
# enough, the lock is shared by all hierarchies)
_MOUNTS = {
    "": ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"),
    "name=systemd": ("/sys/fs/cgroup/systemd",),
}


_stop = [False]
INTERVAL = 0.002
GIVE_UP = 0.5


def _own_procs_file() -> int | None:
    with open("/proc/self/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _hid, names, path in sorted(lines, key=lambda p: p[1] != ""):
        for mount in _MOUNTS.get(names, (f"/sys/fs/cgroup/{names}",)):
            try:
                return os.open(
                    f"{mount}{path.rstrip('/')}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC
                )
            except OSError:
                continue
    return None


def _keep_warm() -> None:
    try:
        fd = _own_procs_file()
        if fd is None:
            return
        pid = str(os.getpid()).encode()
        deadline = time.monotonic() + GIVE_UP
        try:
            while not _stop[0] and time.monotonic() < deadline:
                os.write(fd, pid)
                time.sleep(INTERVAL)
        finally:
            os.close(fd)
    except BaseException:  # a hint only: a failure just means no head start
        pass


_started = [False]


def start() -> None:
    """Start the warm-up thread (once per process)."""
    if _started[0]:
        return
    _started[0] = True
    import _thread

    _thread.start_new_thread(_keep_warm, ())


def stop() -> None:
    """The mover has been forked (it inherits no thread): stop rewriting."""
    _stop[0] = True
