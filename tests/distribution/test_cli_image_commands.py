"""The ``pycontainers image`` commands, run as a user runs them, against the real registry."""

from __future__ import annotations

import json
import subprocess

import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.store import ContentStore

from .conftest import Cli

pytestmark = pytest.mark.registry


def test_pull_ls_rm_prune(
    registry: Registry, images: FixtureImages, run_cli: Cli, repo_name: str
) -> None:
    ref = images.push(registry, "layered", repo_name)
    pulled = run_cli("image", "pull", "--format", "json", ref)
    assert pulled.returncode == 0, pulled.stderr
    doc = json.loads(pulled.stdout)
    assert doc["name"] == ref
    assert doc["digest"] == images.descriptor("layered")["digest"]
    assert len(doc["fetched"]) == 4

    again = run_cli("image", "pull", ref)
    assert again.returncode == 0
    assert again.stdout.strip() == doc["digest"]
    assert "0 blobs fetched" in again.stderr

    registry.stop()  # a stored image is inspected from the store, without the registry
    try:
        local = json.loads(run_cli("image", "inspect", ref).stdout)
    finally:
        registry.start()
    assert local["Digest"] == doc["digest"]
    assert len(local["Layers"]) == 3

    listed = json.loads(run_cli("image", "ls", "--format", "json").stdout)
    assert [(i["name"], i["digest"]) for i in listed] == [(ref, doc["digest"])]
    assert listed[0]["size"] > 0
    table = run_cli("image", "ls").stdout
    assert ref in table and "NAME" in table

    removed = run_cli("image", "rm", ref)
    assert removed.returncode == 0, removed.stderr
    assert run_cli("image", "ls", "-q").stdout == ""
    store = ContentStore(run_cli.store_root)
    assert list(store.all_blobs()) == []  # rm also dropped the blobs nothing uses


def test_inspect_remote_without_pulling_matches_skopeo(
    registry: Registry, images: FixtureImages, run_cli: Cli, repo_name: str
) -> None:
    ref = images.push(registry, "layered", repo_name)
    ours = run_cli("image", "inspect", f"docker://{ref}")
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    a, b = json.loads(ours.stdout), json.loads(theirs)
    for key in ("Name", "Digest", "RepoTags", "Architecture", "Os", "Layers", "Env", "Created"):
        assert a[key] == b[key], key
    layers = images.manifest("layered")["layers"]
    assert [(x["Digest"], x["Size"]) for x in a["LayersData"]] == [
        (x["digest"], x["size"]) for x in layers
    ]
    assert not ContentStore(run_cli.store_root).exists()  # nothing was pulled

    raw = run_cli("image", "inspect", "--raw", ref)  # a bare name not in the store: remote
    assert str(Digest.of_bytes(raw.stdout.encode())) == images.descriptor("layered")["digest"]


def test_inspect_index_picks_platform(
    registry: Registry, images: FixtureImages, run_cli: Cli, repo_name: str
) -> None:
    ref = images.push(registry, "multi", repo_name)
    arm = json.loads(run_cli("image", "inspect", "--platform", "linux/arm64", ref).stdout)
    assert arm["Architecture"] == "arm64"
    assert arm["Digest"] == images.descriptor("multi")["digest"]
    config = run_cli("image", "inspect", "--config", "--platform", "linux/arm64", ref).stdout
    want = images.manifest("busybox-arm64")["config"]["digest"]
    assert str(Digest.of_bytes(config.encode())) == want


def test_fsck_reports_and_repairs(
    registry: Registry, images: FixtureImages, run_cli: Cli, repo_name: str
) -> None:
    ref = images.push(registry, "busybox", repo_name)
    assert run_cli("image", "pull", "-q", ref).returncode == 0
    clean = run_cli("image", "fsck")
    assert clean.returncode == 0, clean.stdout
    layer = Digest.parse(images.manifest("busybox")["layers"][0]["digest"])
    path = ContentStore(run_cli.store_root).blob_path(layer)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    bad = run_cli("image", "fsck", "--format", "json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert [c["digest"] for c in report["corrupt"]] == [str(layer)]
    repaired = run_cli("image", "fsck", "--repair")
    assert f"corrupt blob {layer}" in repaired.stdout and "(removed)" in repaired.stdout
    assert not path.exists()
    # the next pull fetches exactly the removed blob again
    again = json.loads(run_cli("image", "pull", "--format", "json", ref).stdout)
    assert again["fetched"] == [str(layer)]
    assert run_cli("image", "fsck").returncode == 0


@pytest.mark.parametrize(
    ("args", "cause"),
    [
        (["image", "pull", "Bad//Name"], "invalid reference"),
        (["image", "rm", "never/pulled"], "is not in the store"),
        (["image", "copy", "containers-storage:x", "oci:/tmp/x:y"], "not supported"),
    ],
)
def test_bad_input_is_one_clear_line(args: list[str], cause: str, run_cli: Cli) -> None:
    result = run_cli(*args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and cause in lines[0], lines
