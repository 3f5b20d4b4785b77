"""The built-in OCI runtime (``pycontainers-runtime``), runc-compatible.

Start latency matters here: this package is imported once per container start, so
nothing in it may import pydantic, httpx, dbus-next or asyncio on the start path (nor
argparse, json's regex machinery, enum or typing: see bench/README.md).

Process model (see ``container`` and ``init``): ``create`` forks the container's init
directly, after unsharing a new PID namespace (or joining one by path) for that fork
only; the init enters the other namespaces itself. With a user namespace, or for the
systemd hand-off, it forks like runc instead: an intermediate child creates the
namespaces and forks the init (PID 1 of the new PID namespace). The init sets up the
rootfs and credentials, reports ``ready`` over a pipe, waits for the runtime's
``commit`` (the state is saved; if the runtime dies first, the init sees EOF and exits)
and blocks on ``<root>/<id>/exec.fifo`` until ``start`` opens it, then execs the
program. A failure after that (startContainer hook, seccomp, execve) goes back to
``start`` through the fifo. A foreground ``run`` has no fifo: the init execs as soon as
the state is saved, and the runtime learns of the execve (or its failure) on the pipe.
The cgroup directories exist before the fork; the runtime writes the limits while the
init sets up, and moves the init in at its first request (with a new cgroup namespace
before the init unshares it; through an intermediate, as soon as the init's pid is
known). State lives under ``--root`` so any later process can ``state``/``kill``/
``delete``.

Rootless: an unprivileged user's own uid/gid are mapped directly (setgroups denied
first), larger mappings through newuidmap/newgidmap and /etc/subuid, /etc/subgid; the
engine's overlay rootfs is mounted with ``userxattr``; cgroups the user cannot write are
a warning.

Under systemd, a unit runs ``pycontainers-runtime run --detach --bundle DIR ID`` with
``Type=notify`` and ``NotifyAccess=all`` (and ``ExecStopPost=pycontainers-runtime delete
--force ID``): the runtime sends ``MAINPID=<container init>``, ``READY=1`` and a
``BARRIER=1`` and exits, so the container's init is the unit's main process and no
Python process stays behind. The hand-off happens before the program starts: the init
(already systemd's child) waits until the runtime has exited, so systemd never sees a
main PID that is gone, and never has to kill the runtime after a one-shot container.
Failures after that (startContainer hook, execve) go to the init's stderr, the journal. A
foreground ``run`` in such a unit sends ``READY=1`` only and exits with that status.
``--debug`` logs each step (``debuglog``) to ``--log`` or stderr.
"""
