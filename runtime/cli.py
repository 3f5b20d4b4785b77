"""``pycontainers-runtime``: the runc-compatible command line of the built-in OCI runtime.

Kept import-light: it runs once per container start, so there is no argparse (its import
alone costs more than a container's setup) and each verb imports what it needs.
"""

from __future__ import annotations

import os
import sys

from pycontainers import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pycontainers.runtime.container import CreateOptions

USAGE = """\
usage: pycontainers-runtime [global options] COMMAND [options] ID

An OCI runtime (runtime-spec 1.1) with runc's command line.

commands:
  create [--bundle DIR] [--pid-file F] [--console-socket SOCK] [--no-pivot]
         [--preserve-fds N] ID
  start ID
  run [--bundle DIR] [--detach] [--pid-file F] [--console-socket SOCK] [--no-pivot] ID
  state ID
  kill [--all] ID [SIGNAL]
  delete [--force] ID
  list [--format table|json] [--quiet]
  ps [--format table|json] ID
  exec [--process FILE | ARGS...] [--detach] [--tty] [--pid-file F] [--cwd DIR]
       [--env K=V] [--user UID[:GID]] [--console-socket SOCK] [--preserve-fds N] ID
  spec [--bundle DIR] [--rootless]
  features

Under systemd (Type=notify, NotifyAccess=all) run `run --detach --bundle DIR ID`: it
sends MAINPID=<container init> and READY=1 and exits, leaving the init as the main PID.

global options:
  --root DIR           state directory (default /run/pycontainers-runtime;
                       rootless: $XDG_RUNTIME_DIR/pycontainers-runtime)
  --log FILE           log file
  --log-format FORMAT  text or json
  --debug              log each step (to --log, else stderr)
  --systemd-cgroup     accepted for runc compatibility
  -h, --help           show this help
  -v, --version        show the version
"""

OCI_VERSION = "1.1.0"

# option name -> (canonical name, takes a value)
_OPTIONS = {
    "bundle": ("bundle", True), "b": ("bundle", True),
    "pid-file": ("pid-file", True),
    "console-socket": ("console-socket", True),
    "no-pivot": ("no-pivot", False),
    "no-new-keyring": ("no-new-keyring", False),
    "preserve-fds": ("preserve-fds", True),
    "detach": ("detach", False), "d": ("detach", False),
    "force": ("force", False), "f": ("force", False),
    "all": ("all", False), "a": ("all", False),
    "format": ("format", True),
    "quiet": ("quiet", False), "q": ("quiet", False),
    "process": ("process", True), "p": ("process", True),
    "tty": ("tty", False), "t": ("tty", False),
    "cwd": ("cwd", True),
    "env": ("env", True), "e": ("env", True),
    "user": ("user", True), "u": ("user", True),
    "rootless": ("rootless", False),
    "keep": ("keep", False),
}  # fmt: skip


class UsageError(Exception):
    pass


class Args:
    __slots__ = ("options", "positional")

    def __init__(self) -> None:
        self.options: dict[str, str | list[str] | bool] = {}
        self.positional: list[str] = []

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.options.get(name, default)
        if isinstance(value, list):
            return value[-1]
        return value if isinstance(value, str) else default

    def flag(self, name: str) -> bool:
        return bool(self.options.get(name))

    def id(self, verb: str) -> str:
        if not self.positional:
            raise UsageError(f"{verb}: missing container id")
        return self.positional[0]


def parse_args(argv: list[str], *, stop_at_positional: bool = False) -> Args:
    """urfave/cli's conventions as runc uses them: -x, --x, --x=v, -x v; `--` ends options.

    With ``stop_at_positional`` (exec, ps) everything after the id is the command.
    """
    args = Args()
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            args.positional += argv[i:]
            break
        if word.startswith("-") and len(word) > 1 and not word.lstrip("-")[:1].isdigit():
            name, eq, value = word.lstrip("-").partition("=")
            if name not in _OPTIONS:
                raise UsageError(f"unknown option {word!r}")
            canonical, takes_value = _OPTIONS[name]
            if takes_value:
                if not eq:
                    if i >= len(argv):
                        raise UsageError(f"option {word!r} needs a value")
                    value = argv[i]
                    i += 1
                if canonical == "env":
                    env = args.options.setdefault("env", [])
                    assert isinstance(env, list)
                    env.append(value)
                else:
                    args.options[canonical] = value
            else:
                args.options[canonical] = value.lower() not in ("false", "0") if eq else True
            continue
        args.positional.append(word)
        if stop_at_positional:
            args.positional += argv[i:]
            break
    return args


class Globals:
    __slots__ = ("debug", "log", "log_format", "root")

    def __init__(self) -> None:
        self.root = ""
        self.log = ""
        self.log_format = "text"
        self.debug = False


def _split_globals(argv: list[str]) -> tuple[Globals, list[str]]:
    g = Globals()
    i = 0
    while i < len(argv):
        word = argv[i]
        name, eq, value = word.lstrip("-").partition("=")
        if not word.startswith("-"):
            break
        if name in ("root", "log", "log-format", "criu"):
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError(f"option {word!r} needs a value")
                value = argv[i + 1]
                i += 1
            if name == "root":
                g.root = value
            elif name == "log":
                g.log = value
            elif name == "log-format":
                if value not in ("text", "json"):
                    raise UsageError(f"--log-format: {value!r} is not text or json")
                g.log_format = value
        elif name == "debug":
            g.debug = True
        elif name in ("systemd-cgroup", "rootless"):
            pass
        else:
            break
        i += 1
    return g, argv[i:]


def _print_json(doc: object) -> None:
    import json

    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def _cmd_create(g: Globals, a: Args) -> int:
    from pycontainers.runtime import container

    container.create(g.root, a.id("create"), a.get("bundle") or os.getcwd(), _create_opts(a))
    return 0


def _create_opts(a: Args) -> CreateOptions:
    from pycontainers.runtime.container import CreateOptions

    opts = CreateOptions(
        a.get("pid-file"), a.get("console-socket"), a.flag("no-pivot"), preserve_fds(a)
    )
    opts.listen_fds = listen_fds()
    return opts


def preserve_fds(a: Args) -> int:
    value = a.get("preserve-fds") or "0"
    if not value.isdigit():
        raise UsageError(f"--preserve-fds: {value!r} is not a number of fds")
    return int(value)


def listen_fds() -> int:
    """Sockets systemd passed us (sd_listen_fds(3)): LISTEN_FDS, when LISTEN_PID is us.

    As runc does, they go to the container as fds 3.. with LISTEN_FDS and LISTEN_PID=1,
    so a socket-activated unit can run a container that accepts on them.
    """
    count = os.environ.get("LISTEN_FDS", "")
    if not count.isdigit() or os.environ.get("LISTEN_PID") != str(os.getpid()):
        return 0
    return int(count)


def _cmd_start(g: Globals, a: Args) -> int:
    from pycontainers.runtime import container

    container.start(g.root, a.id("start"))
    return 0


def _cmd_run(g: Globals, a: Args) -> int:
    from pycontainers.runtime import container

    opts = _create_opts(a)
    assert isinstance(opts, container.CreateOptions)
    return container.run(
        g.root, a.id("run"), a.get("bundle") or os.getcwd(), opts, a.flag("detach")
    )


def _cmd_state(g: Globals, a: Args) -> int:
    from pycontainers.runtime import state

    _print_json(state.load(g.root, a.id("state")).oci_state())
    return 0


def _cmd_kill(g: Globals, a: Args) -> int:
    from pycontainers.runtime import container

    signum = container.parse_signal(a.positional[1] if len(a.positional) > 1 else "TERM")
    container.kill(g.root, a.id("kill"), signum, a.flag("all"))
    return 0


def _cmd_delete(g: Globals, a: Args) -> int:
    from pycontainers.runtime import container
    from pycontainers.runtime.errors import ContainerNotFound

    try:
        container.delete(g.root, a.id("delete"), a.flag("force"))
    except ContainerNotFound:
        if not a.flag("force"):
            raise
    return 0


def _cmd_list(g: Globals, a: Args) -> int:
    from pycontainers.runtime import state
    from pycontainers.runtime.errors import OciRuntimeError

    rows = []
    for cid in state.list_ids(g.root):
        try:
            rows.append(state.load(g.root, cid).oci_state())
        except OciRuntimeError:
            continue
    if a.flag("quiet"):
        sys.stdout.write("".join(f"{r['id']}\n" for r in rows))
    elif a.get("format") == "json":
        _print_json(rows)
    else:
        lines = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        lines += [
            (
                str(r["id"]),
                str(r["pid"]),
                str(r["status"]),
                str(r["bundle"]),
                str(r["created"]),
                str(r["owner"]) or "root",
            )
            for r in rows
        ]
        widths = [max(len(line[i]) for line in lines) for i in range(6)]
        for line in lines:
            sys.stdout.write(
                "   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n"
            )
    return 0


def _cmd_ps(g: Globals, a: Args) -> int:
    from pycontainers.runtime import container, state

    st = state.load(g.root, a.id("ps"))
    pids = container.container_pids(st)
    if a.get("format") == "json":
        _print_json(pids)
        return 0
    import subprocess

    ps_args = a.positional[1:] or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    col = header.index("PID") if "PID" in header else 1
    sys.stdout.write(lines[0] + "\n")
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in pids:
            sys.stdout.write(line + "\n")
    return 0


def _cmd_exec(g: Globals, a: Args) -> int:
    from pycontainers.runtime import execproc

    return execproc.exec_in(g.root, a.id("exec"), a)


def _cmd_spec(g: Globals, a: Args) -> int:
    from pycontainers.runtime import specgen

    specgen.write_spec(a.get("bundle") or os.getcwd(), rootless=a.flag("rootless"))
    return 0


def _cmd_features(g: Globals, a: Args) -> int:
    from pycontainers.runtime import specgen

    _print_json(specgen.features())
    return 0


COMMANDS = {
    "create": _cmd_create,
    "start": _cmd_start,
    "run": _cmd_run,
    "state": _cmd_state,
    "kill": _cmd_kill,
    "delete": _cmd_delete,
    "list": _cmd_list,
    "ps": _cmd_ps,
    "exec": _cmd_exec,
    "spec": _cmd_spec,
    "features": _cmd_features,
}


def _report(g: Globals, message: str) -> None:
    """One error line: on stderr, and in --log in the chosen format (json as runc writes it)."""
    if g.log_format == "json":
        import json
        import time

        line = json.dumps(
            {
                "level": "error",
                "msg": message,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
    else:
        line = f"pycontainers-runtime: {message}"
    if g.log:
        try:
            with open(g.log, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass
    sys.stderr.write(line + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """The console script. Called without ``argv`` (as a program) it ends the process with
    os._exit once stdout and stderr are flushed: the interpreter's orderly shutdown
    (module teardown, garbage collection) costs ~3 ms per command and has nothing to
    release that the kernel would not."""
    if argv is not None:
        return _main(list(argv))
    # A run of a few tens of milliseconds that ends in os._exit has no garbage worth
    # collecting, and a collection after a fork would write to every object it visits,
    # copying the pages the container's init shares with us.
    import gc

    gc.disable()
    code = _main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _warm_up_at_once(verb: str, parsed: Args) -> bool:
    """exec, and a foreground run (its init is forked directly: see container._create),
    move a process into a container's cgroups: the warm-up starts before anything else
    (see cgroup_prewarm). create decides once it has read the config."""
    return verb == "exec" or (verb == "run" and not parsed.flag("detach"))


def _main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    if args[0] in ("-v", "--version", "version"):
        sys.stdout.write(f"pycontainers-runtime version {__version__}\nspec: {OCI_VERSION}\n")
        return 0
    g = Globals()
    try:
        g, rest = _split_globals(args)
        if not rest:
            raise UsageError("missing command")
        if rest[0] in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        verb = COMMANDS.get(rest[0])
        if verb is None:
            raise UsageError(f"unknown command {rest[0]!r}")
        if g.debug:
            from pycontainers.runtime import debuglog
            from pycontainers.runtime.errors import TRACE

            debuglog.enable(g.log, g.log_format == "json")
            TRACE[0](f"{rest[0]}: {' '.join(rest[1:])} (root {g.root or 'default'})")
        parsed = parse_args(rest[1:], stop_at_positional=rest[0] in ("exec", "ps"))
        if _warm_up_at_once(rest[0], parsed) and os.geteuid() == 0:
            from pycontainers.runtime import cgroup_prewarm

            cgroup_prewarm.start()
        if not g.root:
            from pycontainers.runtime.state import default_root

            g.root = default_root()
        return verb(g, parsed)
    except UsageError as exc:
        _report(g, f"{exc} (see --help)")
        return 2
    except Exception as exc:
        from pycontainers.runtime.errors import OciRuntimeError, describe

        if isinstance(exc, OciRuntimeError | OSError):
            _report(g, str(exc) if isinstance(exc, OciRuntimeError) else f"{exc}")
            return 1
        # a bug: still one line for the caller (the traceback with --debug)
        from pycontainers.runtime.errors import TRACE

        if TRACE:
            import traceback

            TRACE[0]("".join(traceback.format_exception(exc)).rstrip())
        _report(g, describe(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
