"""``pycontainers`` parses its command line without loading the heavy parts."""

from __future__ import annotations

import subprocess
import sys

from pycontainers.distribution import cli_trust, cosign_key


def test_parser_imports_no_heavy_libraries() -> None:
    probe = (
        "import sys, pycontainers.reconciler.cli as c\n"
        "c.build_parser()\n"
        "heavy = {'pydantic', 'httpx', 'dbus_next', 'cryptography', 'yaml', 'asyncio'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_declared_choices_match_the_implementation() -> None:
    assert cli_trust.PASSWORD_ENV == cosign_key.PASSWORD_ENV
    assert cli_trust.ALGORITHMS == cosign_key.ALGORITHMS
