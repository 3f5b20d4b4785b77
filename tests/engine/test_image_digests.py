"""The engine compares like with like: a tag's registry digest with what the store pulled."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.reconciler.images import ImageSupply
from pycontainers.reconciler.layout import EnginePaths
from pycontainers.reconciler.spec import ContainerSpec

pytestmark = pytest.mark.registry


def test_multi_arch_tag_is_not_stale_after_its_pull(
    registry: Registry, images: FixtureImages, tmp_path: Path
) -> None:
    """For an image picked from an index, the tag's digest is the index's; if the engine
    compared it with the platform manifest it would re-pull and replace forever."""
    ref = images.push(registry, "multi", "engine/multi-digest")
    supply = ImageSupply(EnginePaths(storage=tmp_path / "storage", runroot=tmp_path / "run"))
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    supply.policy_path = str(policy)
    spec = ContainerSpec.model_validate({"image": ref, "imagePullPolicy": "Always"})

    async def run() -> tuple[str | None, str]:
        remote = await supply.remote_digest(ref)
        prepared = await supply.prepare(spec, want_digest=remote)
        return remote, prepared.digest

    if os.geteuid() != 0:
        pytest.skip("unpacking layers with their owners needs root")
    remote, prepared = asyncio.run(run())
    assert remote == images.descriptor("multi")["digest"]
    assert prepared == remote
    assert supply.stored_digest(ref) == remote
