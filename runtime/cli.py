"""``pycontainers-runtime``: the runc-compatible command line of the built-in OCI runtime.

Kept import-light: it runs once per container start.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pycontainers import __version__

USAGE = """\
usage: pycontainers-runtime [global options] COMMAND [options] ID

An OCI runtime (runtime-spec 1.1) with runc's command line.

global options:
  --root DIR           state directory
  --log FILE           log file
  --log-format FORMAT  text or json
  --debug              debug logging
  --systemd-cgroup     accepted for runc compatibility
  -h, --help           show this help
  -v, --version        show the version
"""

OCI_VERSION = "1.1.0"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    if args[0] in ("-v", "--version", "version"):
        sys.stdout.write(f"pycontainers-runtime version {__version__}\nspec: {OCI_VERSION}\n")
        return 0
    sys.stderr.write(f"pycontainers-runtime: unknown command {args[0]!r}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
