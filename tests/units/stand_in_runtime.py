#!/usr/bin/python3
"""A stand-in for ``pycontainers-runtime run --detach`` (no namespaces): the MAINPID hand-off only.

Used until the real runtime can run a bundle, and to test the unit model without it. It
takes the runtime's command line, forks the bundle's ``process.args`` as the "container
init", and once that has exec'd tells systemd ``MAINPID=<child>`` + ``READY=1`` on
$NOTIFY_SOCKET, waits for the barrier (so systemd has read the message while the sender
still exists) and exits.
"""

import array
import json
import os
import socket
import sys


def notify(message: str) -> None:
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
        # sd_notify_barrier: send BARRIER=1 with a pipe's write end; systemd closes its
        # copy once it has processed everything sent before.
        r, w = os.pipe()
        sock.sendmsg(
            [b"BARRIER=1"],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]).tobytes())],
        )
        os.close(w)
        os.read(r, 1)
        os.close(r)


def main(argv: list[str]) -> int:
    args = list(argv)
    if args[:1] == ["--root"]:
        args = args[2:]
    verb = args[0]
    if verb == "delete":
        return 0
    if verb != "run":
        print(f"stand-in runtime: unsupported command {verb!r}", file=sys.stderr)
        return 2
    bundle = args[args.index("--bundle") + 1]
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            process = json.load(f)["process"]
    except OSError as exc:
        print(f"stand-in runtime: cannot read bundle {bundle}: {exc.strerror}", file=sys.stderr)
        return 1
    # Like a real runtime, report READY only once the init runs the container's program:
    # the close-on-exec pipe reaches EOF at the child's execve.
    exec_seen, exec_done = os.pipe()
    os.set_inheritable(exec_done, False)
    pid = os.fork()
    if pid == 0:
        os.close(exec_seen)
        os.setsid()
        env = dict(e.split("=", 1) for e in process.get("env", []))
        os.execvpe(process["args"][0], process["args"], {"PATH": "/usr/bin:/bin", **env})
    os.close(exec_done)
    os.read(exec_seen, 1)
    os.close(exec_seen)
    notify(f"MAINPID={pid}\nREADY=1")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
