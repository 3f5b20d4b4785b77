"""Progress output: bars with bytes and rate on a terminal, plain lines otherwise, none with -q."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution.docker_transport import ConnectOptions
from pycontainers.distribution.progress import (
    BarProgress,
    LineProgress,
    QuietProgress,
    progress_for,
)
from pycontainers.distribution.pull import pull

from .conftest import Cli

pytestmark = pytest.mark.registry


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_kind_follows_the_output() -> None:
    assert isinstance(progress_for(FakeTerminal(), quiet=False), BarProgress)
    assert isinstance(progress_for(io.StringIO(), quiet=False), LineProgress)
    assert isinstance(progress_for(FakeTerminal(), quiet=True), QuietProgress)


def test_bars_show_each_layer_and_total(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    repo_name: str,
) -> None:
    ref = images.push(registry, "layered", repo_name)
    out = FakeTerminal()
    asyncio.run(pull(ref, store_root, connect, progress=BarProgress(out)))
    text = out.getvalue()
    assert "\x1b[" in text  # redrawn in place
    final = text.rsplit("\x1b[J", 1)[-1].strip().splitlines()
    shorts = {layer["digest"][7:19] for layer in images.manifest("layered")["layers"]}
    assert shorts <= {line.split()[0] for line in final}
    assert final[-1].startswith("total")
    assert all(re.search(r"\[#+\]", line) for line in final)  # every bar full at the end


def test_plain_lines_when_not_a_terminal_and_quiet(
    registry: Registry, images: FixtureImages, run_cli: Cli, repo_name: str
) -> None:
    ref = images.push(registry, "busybox", repo_name)
    loud = run_cli("image", "pull", ref)
    assert loud.returncode == 0
    assert "\x1b[" not in loud.stderr
    layer = images.manifest("busybox")["layers"][0]["digest"][7:19]
    assert f"copying blob {layer}" in loud.stderr and f"blob {layer} fetched" in loud.stderr
    run_cli("image", "rm", ref)
    quiet = run_cli("image", "pull", "-q", ref)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.strip() == images.descriptor("busybox")["digest"]
