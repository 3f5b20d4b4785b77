"""Rewrite the ``pycontainers-runtime`` console script to start without ``site``.

pip's console script runs the interpreter with ``site``, which reads every ``.pth`` file
of the environment (an editable install adds an import hook that every later import
goes through): 3-15 ms on each container start, for a program that needs nothing from
site-packages but this package. The rewritten script runs the same interpreter with
``-I -S`` and puts only this package's directory on ``sys.path``.

    python -m pycontainers.runtime.launcher [SCRIPT]

SCRIPT defaults to ``pycontainers-runtime`` beside the interpreter (the environment's
``bin/``). ``make`` runs this after each ``pip install``; a later plain ``pip install``
puts pip's slower (but working) script back.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pycontainers

SCRIPT_NAME = "pycontainers-runtime"


def package_root() -> str:
    """The directory this ``pycontainers`` was imported from (not symlink-resolved: the
    in-tree package of an editable install links its sub-packages)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(pycontainers.__file__)))


def script_text(python: str, root: str) -> str:
    # Linux passes everything after the interpreter path as one argument: "-IS", not "-I -S"
    return (
        f"#!{python} -IS\n"
        "# pycontainers-runtime, started without site (see pycontainers.runtime.launcher)\n"
        "import sys\n"
        f"sys.path.append({root!r})\n"
        "from pycontainers.runtime.cli import main\n"
        "main()\n"
    )


def install(script: str, python: str | None = None) -> None:
    """Write the script atomically (a running container start keeps the old one)."""
    text = script_text(python or sys.executable, package_root())
    tmp = f"{script}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, script)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"]):
        sys.stdout.write(__doc__ or "")
        return 0
    script = args[0] if args else str(Path(sys.executable).parent / SCRIPT_NAME)
    install(script)
    sys.stdout.write(f"{script}: starts with -I -S, package from {package_root()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
