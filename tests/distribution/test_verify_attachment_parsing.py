"""Untrusted ``.sig`` manifests: every odd descriptor becomes a reason, never a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.sigstore import (
    OCI_MANIFEST_MEDIA_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    AttachedLayer,
    SignatureRejected,
    Why,
    attached_layers,
)

GOOD = {"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, "digest": str(Digest.of_bytes(b"x")), "size": 1}


def _manifest(*layers: Any, media: str = OCI_MANIFEST_MEDIA_TYPE) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": media, "layers": list(layers)}).encode()


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({**GOOD, "size": True}, "bad size True"),
        ({**GOOD, "size": 1 << 30}, "bad size"),
        ({**GOOD, "size": -1}, "bad size"),
        ({**GOOD, "digest": "md5:abc"}, "invalid digest"),
        ({**GOOD, "mediaType": ""}, "no mediaType"),
        ({**GOOD, "annotations": {"a": 1}}, "annotations must map strings to strings"),
    ],
)
def test_bad_descriptor_is_a_reason_next_to_good_ones(layer: dict[str, Any], message: str) -> None:
    bad, good = attached_layers(_manifest(layer, GOOD), origin="r/x:sha256-1.sig")
    assert isinstance(bad, SignatureRejected)
    assert bad.why is Why.MALFORMED
    assert message in str(bad)
    assert "r/x:sha256-1.sig layer 0" in str(bad)
    assert isinstance(good, AttachedLayer)
    assert good.digest == Digest.of_bytes(b"x")


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b"not json", "malformed signature attachment"),
        (_manifest(GOOD, media="application/vnd.docker.distribution.manifest.v2+json"), "want"),
        (json.dumps({"schemaVersion": 2, "layers": {}}).encode(), "layers is not a list"),
    ],
)
def test_malformed_attachment_manifest_is_rejected(manifest: bytes, message: str) -> None:
    with pytest.raises(SignatureRejected, match=message):
        attached_layers(manifest, origin="r/x:sha256-1.sig")
