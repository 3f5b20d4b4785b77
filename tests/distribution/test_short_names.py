"""Short names resolve through containers-registries.conf(5): aliases, search list, insecure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution.docker_transport import ConnectOptions
from pycontainers.distribution.pull import pull
from pycontainers.distribution.registries_conf import RegistriesConf, is_loopback
from pycontainers.distribution.store import ContentStore

from .conftest import Cli


def _conf(tmp_path: Path, text: str, dropin: str = "") -> RegistriesConf:
    main = tmp_path / "registries.conf"
    main.write_text(text)
    if dropin:
        (tmp_path / "registries.conf.d").mkdir()
        (tmp_path / "registries.conf.d" / "10-x.conf").write_text(dropin)
    return RegistriesConf.load(main)


def test_search_list_alias_and_dropins(tmp_path: Path) -> None:
    conf = _conf(
        tmp_path,
        'unqualified-search-registries = ["quay.io", "docker.io"]\n'
        '[aliases]\n"tool" = "registry.example.com/tools/tool"\n'
        '[[registry]]\nlocation = "reg.internal:5000"\ninsecure = true\n'
        '[[registry]]\nprefix = "evil.io"\nlocation = "evil.io"\nblocked = true\n',
        dropin='[aliases]\n"busybox" = "docker.io/library/busybox"\n',
    )
    assert [str(r) for r in conf.candidates("app:1")] == [
        "quay.io/app:1",
        "docker.io/library/app:1",
    ]
    assert [str(r) for r in conf.candidates("tool")] == ["registry.example.com/tools/tool:latest"]
    assert [str(r) for r in conf.candidates("busybox:1.36")] == ["docker.io/library/busybox:1.36"]
    assert [str(r) for r in conf.candidates("ghcr.io/a/b")] == ["ghcr.io/a/b:latest"]
    assert conf.is_insecure("reg.internal:5000") and not conf.is_insecure("reg.internal")
    assert conf.is_blocked("evil.io/x/y")


def test_no_search_list_means_docker_hub() -> None:
    assert [str(r) for r in RegistriesConf().candidates("busybox")] == [
        "docker.io/library/busybox:latest"
    ]


def test_loopback_hosts() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:80")
    assert not is_loopback("registry.example.com:5000")


@pytest.mark.registry
def test_short_name_pull_through_search_list(
    registry: Registry,
    images: FixtureImages,
    store_root: Path,
    connect: ConnectOptions,
    tmp_path: Path,
) -> None:
    images.push(registry, "busybox", "shortnames/busybox")
    connect.registries = _conf(
        tmp_path,
        f'unqualified-search-registries = ["127.0.0.1:1", "{registry.host}"]\n',
    )
    result = asyncio.run(pull("shortnames/busybox", store_root, connect))
    assert result.name == f"{registry.host}/shortnames/busybox:latest"
    assert ContentStore(store_root).resolve(result.name).digest == result.copy.manifest.digest


@pytest.mark.registry
def test_short_name_on_the_command_line(
    registry: Registry, images: FixtureImages, run_cli: Cli
) -> None:
    images.push(registry, "busybox", "shortnames/cli")
    Path(run_cli.env["CONTAINERS_REGISTRIES_CONF"]).write_text(
        f'[aliases]\n"bb" = "{registry.host}/shortnames/cli"\n'
    )
    assert run_cli("image", "pull", "-q", "bb").returncode == 0
    assert run_cli("image", "ls", "-q").stdout.split() == [f"{registry.host}/shortnames/cli:latest"]
    assert run_cli("image", "rm", "bb").returncode == 0  # the store finds it by short name too
