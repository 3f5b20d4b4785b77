"""Scope lookup (most specific wins) and the signedIdentity rules, as containers/image has them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.policy import SignedIdentity, parse_policy
from pycontainers.distribution.policy_eval import (
    docker_image,
    docker_namespaces,
    evaluate,
    scope_for,
)
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.trust import dir_image

VECTORS = Path(__file__).parent / "fixtures" / "sigstore-cosign"
D = "sha256:" + "ab" * 32


def _scope_of(scopes: list[str], ref: str, transport: str = "docker") -> str:
    doc = {
        "default": [{"type": "reject"}],
        "transports": {transport: {s: [{"type": "insecureAcceptAnything"}] for s in scopes}},
    }
    policy = parse_policy(json.dumps(doc).encode(), source="p.json")
    image = docker_image(ImageRef.parse(ref), b"{}", list)
    return scope_for(policy, image)[0]


ALL = [
    "",
    "*.com",
    "*.example.com",
    "registry.example.com:5000",
    "registry.example.com:5000/team",
    "registry.example.com:5000/team/app",
    "registry.example.com:5000/team/app:1.0",
]


@pytest.mark.parametrize(
    ("present", "winner"),
    [(ALL[: i + 1], ALL[i]) for i in range(len(ALL))],
    ids=[s or "transport-default" for s in ALL],
)
def test_most_specific_scope_wins(present: list[str], winner: str) -> None:
    got = _scope_of(present, "registry.example.com:5000/team/app:1.0")
    assert got == f'transports.docker["{winner}"]'


def test_a_tag_scope_covers_only_its_tag() -> None:
    scopes = ["registry.example.com:5000/team/app:1.0"]
    assert _scope_of(scopes, "registry.example.com:5000/team/app:2.0") == "default"


def test_a_digest_reference_matches_a_digest_scope() -> None:
    ref = f"quay.io/app@{D}"
    assert _scope_of([ref, "quay.io"], ref) == f'transports.docker["{ref}"]'


def test_other_transports_and_other_hosts_fall_to_default() -> None:
    assert _scope_of(["quay.io"], "ghcr.io/x/y:1") == "default"
    assert _scope_of(["", "/var/images"], "quay.io/x/y:1", transport="oci") == "default"


def test_namespaces_strip_the_port_before_wildcards() -> None:
    ref = ImageRef.parse("example.com:8443/ns/repo:tag")
    assert docker_namespaces(ref) == (
        "example.com:8443/ns/repo",
        "example.com:8443/ns",
        "example.com:8443",
        "*.com",
    )


def test_short_names_are_looked_up_fully_expanded() -> None:
    assert _scope_of(["docker.io/library/busybox"], "busybox") == (
        'transports.docker["docker.io/library/busybox"]'
    )


def _ok(identity: SignedIdentity, image: str | None, signed: str) -> bool:
    ref = ImageRef.parse(image) if image is not None else None
    return identity.matches(ref, signed)


REPO_DIGEST_OR_EXACT = SignedIdentity("matchRepoDigestOrExact")
EXACT = SignedIdentity("matchExact")
REPOSITORY = SignedIdentity("matchRepository")


@pytest.mark.parametrize(
    ("identity", "image", "signed", "expected"),
    [
        (REPO_DIGEST_OR_EXACT, "quay.io/a:1", "quay.io/a:1", True),
        (REPO_DIGEST_OR_EXACT, "quay.io/a:1", "quay.io/a:2", False),
        (REPO_DIGEST_OR_EXACT, "quay.io/a:1", "quay.io/a", False),  # name-only signature
        (REPO_DIGEST_OR_EXACT, f"quay.io/a@{D}", "quay.io/a:anything", True),
        (REPO_DIGEST_OR_EXACT, f"quay.io/a@{D}", "quay.io/a", False),
        (REPO_DIGEST_OR_EXACT, f"quay.io/a@{D}", "quay.io/b:1", False),
        (REPO_DIGEST_OR_EXACT, "busybox", "docker.io/library/busybox:latest", True),
        (EXACT, "quay.io/a:1", "quay.io/a:1", True),
        (EXACT, f"quay.io/a@{D}", f"quay.io/a@{D}", True),
        (EXACT, "quay.io/a:1", "quay.io/a", False),
        (EXACT, "quay.io/a:1", "quay.io/a:2", False),
        (REPOSITORY, "quay.io/a:1", "quay.io/a", True),
        (REPOSITORY, "quay.io/a:1", "quay.io/a:7", True),
        (REPOSITORY, "quay.io/a:1", "quay.io/b", False),
        (REPOSITORY, None, "quay.io/a", False),  # no docker reference to compare with
        (SignedIdentity("exactReference", docker_reference="x/y:1"), None, "x/y:1", True),
        (
            SignedIdentity("exactReference", docker_reference="x/y:1"),
            "quay.io/other:9",
            "docker.io/x/y:1",
            True,
        ),
        (SignedIdentity("exactReference", docker_reference="x/y:1"), None, "x/y", False),
        (SignedIdentity("exactRepository", docker_repository="x/y"), None, "x/y:3", True),
        (SignedIdentity("exactRepository", docker_repository="x/y"), None, "x/z:3", False),
        (REPOSITORY, "quay.io/a:1", "Not A Reference", False),
    ],
)
def test_signed_identity_rules(
    identity: SignedIdentity, image: str | None, signed: str, expected: bool
) -> None:
    assert _ok(identity, image, signed) is expected


REMAP = SignedIdentity(
    "remapIdentity", prefix="mirror.example.com/upstream", signed_prefix="docker.io/library"
)


@pytest.mark.parametrize(
    ("image", "signed", "expected"),
    [
        ("mirror.example.com/upstream/busybox:1", "docker.io/library/busybox:1", True),
        ("mirror.example.com/upstream/busybox:1", "docker.io/library/busybox:2", False),
        # "upstreamx" only shares a string prefix: no remap, so the signature must match as is
        ("mirror.example.com/upstreamx/busybox:1", "docker.io/library/busybox:1", False),
        ("mirror.example.com/upstreamx/busybox:1", "mirror.example.com/upstreamx/busybox:1", True),
    ],
)
def test_remap_identity(image: str, signed: str, expected: bool) -> None:
    assert _ok(REMAP, image, signed) is expected


def test_remap_identity_with_a_host_prefix() -> None:
    remap = SignedIdentity("remapIdentity", prefix="mirror.local:5000", signed_prefix="quay.io")
    assert _ok(remap, "mirror.local:5000/org/app:1", "quay.io/org/app:1")
    assert not _ok(remap, "mirror.local:5000/org/app:1", "mirror.local:5000/org/app:1")


def test_dir_image_without_reference_uses_dir_scopes(tmp_path: Path) -> None:
    """Without --reference a dir: image is judged by its path (scope) and has no identity."""
    key = str(VECTORS / "cosign.pub")
    parent = str(VECTORS.resolve())
    doc = {
        "default": [{"type": "reject"}],
        "transports": {
            "dir": {
                parent: [
                    {
                        "type": "sigstoreSigned",
                        "keyPath": key,
                        "signedIdentity": {
                            "type": "exactRepository",
                            "dockerRepository": "192.168.64.2:5000/cosign-signed-single-sample",
                        },
                    }
                ]
            }
        },
    }
    policy = parse_policy(json.dumps(doc).encode(), source="p.json")
    verdict = evaluate(policy, dir_image(VECTORS / "dir-img-cosign-valid"))
    assert verdict.accepted, verdict.explain()
    assert verdict.scope == f'transports.dir["{parent}"]'
    # matchRepository needs the image's own reference, which a bare dir: image lacks.
    doc["transports"]["dir"][parent][0]["signedIdentity"] = {"type": "matchRepository"}  # type: ignore[index]
    policy = parse_policy(json.dumps(doc).encode(), source="p.json")
    verdict = evaluate(policy, dir_image(VECTORS / "dir-img-cosign-valid"))
    assert not verdict.accepted
    assert "an image without a docker reference" in verdict.summary()


def test_pinning_a_key_overrides_a_permissive_policy() -> None:
    """How a container spec pins a key: a repository scope on top of the host policy."""
    base = parse_policy(b'{"default": [{"type": "insecureAcceptAnything"}]}', source="p.json")
    ref = ImageRef.parse("192.168.64.2:5000/cosign-signed-single-sample:latest")
    pinned = base.pin_keys(
        ref, [VECTORS / "cosign2.pub"], signed_identity=SignedIdentity("matchRepository")
    )
    image = dir_image(VECTORS / "dir-img-cosign-valid", ref)
    assert evaluate(base, image).accepted
    verdict = evaluate(pinned, image)
    assert not verdict.accepted
    assert verdict.scope == f'transports.docker["{ref.name}"]'
    good = base.pin_keys(ref, [VECTORS / "cosign.pub"], SignedIdentity("matchRepository"))
    assert evaluate(good, image).accepted
    inline = base.pin_keys(
        ref,
        signed_identity=SignedIdentity("matchRepository"),
        key_pems=[(VECTORS / "cosign.pub").read_bytes()],
    )
    assert evaluate(inline, image).accepted


def test_every_requirement_in_a_scope_must_accept() -> None:
    doc = {
        "default": [
            {"type": "insecureAcceptAnything"},
            {
                "type": "sigstoreSigned",
                "keyPath": str(VECTORS / "cosign.pub"),
                "signedIdentity": {"type": "matchRepository"},
            },
            {"type": "reject"},
        ]
    }
    policy = parse_policy(json.dumps(doc).encode(), source="p.json")
    ref = ImageRef.parse("192.168.64.2:5000/cosign-signed-single-sample:latest")
    verdict = evaluate(policy, dir_image(VECTORS / "dir-img-cosign-valid", ref))
    assert not verdict.accepted
    assert verdict.requirement == "reject"


def test_a_missing_key_file_refuses_with_its_path(tmp_path: Path) -> None:
    doc = {"default": [{"type": "sigstoreSigned", "keyPath": str(tmp_path / "gone.pub")}]}
    policy = parse_policy(json.dumps(doc).encode(), source="p.json")
    ref = ImageRef.parse("192.168.64.2:5000/cosign-signed-single-sample:latest")
    verdict = evaluate(policy, dir_image(VECTORS / "dir-img-cosign-valid", ref))
    assert not verdict.accepted
    assert f"cannot read key {tmp_path / 'gone.pub'}" in verdict.summary()


def test_manifest_digest_is_the_digest_of_the_bytes() -> None:
    image = dir_image(VECTORS / "dir-img-cosign-valid")
    assert image.manifest_digest == Digest.parse(
        "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
    )
