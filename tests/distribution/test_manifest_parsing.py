"""Manifests, indexes and configs parse from raw bytes; platform selection; schema 1 refused."""

from __future__ import annotations

import json

import pytest

from harness.images import FixtureImages
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import ManifestError, NoMatchingPlatform, UnsupportedMediaType
from pycontainers.distribution.manifest import (
    DOCKER_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageIndex,
    ImageManifest,
    Platform,
    parse_config,
    parse_manifest,
)


def _raw(images: FixtureImages, tag: str) -> bytes:
    return images.blob(images.descriptor(tag)["digest"])


def test_fixture_manifest_keeps_bytes_and_digest(images: FixtureImages) -> None:
    raw = _raw(images, "layered")
    m = parse_manifest(raw, OCI_MANIFEST)
    assert isinstance(m, ImageManifest)
    assert m.raw == raw
    assert str(m.digest) == images.descriptor("layered")["digest"]
    assert len(m.layers) == 3
    cfg = parse_config(images.blob(str(m.config.digest)))
    assert len(cfg.diff_ids) == 3
    assert cfg.platform == Platform("linux", "amd64")


def test_index_platform_selection(images: FixtureImages) -> None:
    idx = parse_manifest(_raw(images, "multi"), None)
    assert isinstance(idx, ImageIndex)
    assert idx.media_type == OCI_INDEX
    amd = idx.select(Platform("linux", "amd64"))
    arm = idx.select(Platform.parse("linux/arm64/v8"))  # an index entry without variant matches
    assert str(amd.digest) == images.descriptor("busybox")["digest"]
    assert str(arm.digest) == images.descriptor("busybox-arm64")["digest"]
    with pytest.raises(NoMatchingPlatform, match=r"linux/s390x.*linux/amd64, linux/arm64"):
        idx.select(Platform("linux", "s390x"))


def test_exact_variant_wins() -> None:
    d = {"mediaType": OCI_MANIFEST, "size": 1}
    entries = [
        {**d, "digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "arm"}},
        {
            **d,
            "digest": "sha256:" + "2" * 64,
            "platform": {"os": "linux", "architecture": "arm", "variant": "v7"},
        },
    ]
    raw = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}).encode()
    idx = parse_manifest(raw)
    assert isinstance(idx, ImageIndex)
    assert idx.select(Platform("linux", "arm", "v7")).digest == Digest("sha256", "2" * 64)


@pytest.mark.parametrize(
    ("raw", "error", "cause"),
    [
        (b"<html>", ManifestError, "not valid JSON"),
        (b"[]", ManifestError, "not a JSON object"),
        (b'{"schemaVersion": 1, "fsLayers": []}', UnsupportedMediaType, "schema 1"),
        (
            b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
            ManifestError,
            "no config",
        ),
        (
            b'{"schemaVersion": 2, "mediaType": "application/x-unknown", "layers": []}',
            UnsupportedMediaType,
            "application/x-unknown",
        ),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:12", "size": 1},'
            b' "layers": []}',
            ManifestError,
            "invalid digest",
        ),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:'
            + b"a" * 64
            + b'", "size": -1}, "layers": []}',
            ManifestError,
            "no valid size",
        ),
    ],
)
def test_bad_manifests_are_refused_clearly(raw: bytes, error: type[Exception], cause: str) -> None:
    with pytest.raises(error, match=cause) as info:
        parse_manifest(raw, what="r.io/app:1")
    assert str(info.value).startswith("r.io/app:1: ")


def test_schema1_refused_by_content_type() -> None:
    raw = b'{"schemaVersion": 2, "layers": [], "config": {}}'
    with pytest.raises(UnsupportedMediaType, match="schema 1"):
        parse_manifest(raw, "application/vnd.docker.distribution.manifest.v1+prettyjws")
