"""The built-in OCI runtime (``pycontainers-runtime``), runc-compatible.

Start latency matters here: this package is imported once per container start, so
nothing in it may import pydantic, httpx, dbus-next or asyncio on the start path (nor
argparse, json's regex machinery, enum or typing: see bench/README.md).

Process model (runc's, see ``container`` and ``init``): ``create`` forks an intermediate
child that joins or creates the namespaces and forks the container's init (PID 1 of a
new PID namespace); the init sets up the rootfs and credentials, reports ``ready`` over
a pipe, waits for the runtime's ``commit`` (the state is saved; if the runtime dies
first, the init sees EOF and exits) and blocks on ``<root>/<id>/exec.fifo`` until
``start`` opens it, then execs the program. A failure after that (startContainer hook,
seccomp, execve) goes back to ``start`` through the fifo.
While the init mounts, the runtime writes the cgroup limits and moves the init
into the container's cgroups (with a new cgroup namespace the intermediate child moves
itself first instead). State lives under ``--root`` so any later process can
``state``/``kill``/``delete``.

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
