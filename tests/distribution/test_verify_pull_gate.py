"""``image pull`` checks the policy before any blob: a refused image never reaches the store.

Runs the real pull path (``pycontainers --root R --policy P image pull REF``) against the
real registry and then looks at the store on disk: no blob, no name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution import cosign_key
from pycontainers.reconciler.cli import main

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pullkeys")
    out = {}
    for name in ("trusted", "other"):
        key = cosign_key.generate()
        (d / f"{name}.key").write_bytes(cosign_key.encrypt_private_key(key, b"pw"))
        (d / f"{name}.pub").write_bytes(cosign_key.public_key_pem(key))
        out[name] = d / f"{name}.key"
        out[f"{name}.pub"] = d / f"{name}.pub"
    (d / "pw").write_text("pw")
    out["pw"] = d / "pw"
    return out


def _policy(tmp_path: Path, registry: Registry, reqs: list[dict[str, Any]]) -> Path:
    path = tmp_path / "policy.json"
    doc = {
        "default": [{"type": "insecureAcceptAnything"}],
        "transports": {"docker": {registry.host: reqs}},
    }
    path.write_text(json.dumps(doc))
    return path


def _blobs(root: Path) -> list[Path]:
    d = root / "blobs" / "sha256"
    return sorted(d.iterdir()) if d.exists() else []


def _pull(root: Path, policy: Path, ref: str) -> int:
    return main(["--root", str(root), "--policy", str(policy), "image", "pull", "-q", ref])


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("unsigned", "a signature is required, but none was found"),
        ("other-key", "does not verify with the trusted key"),
        ("reject", "this scope rejects every image"),
    ],
)
def test_refused_image_never_reaches_the_store(
    case: str,
    why: str,
    registry: Registry,
    images: FixtureImages,
    signer: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = images.push(registry, "busybox", f"trust-gate-{case}")
    if case == "other-key":
        rc = main(
            [
                "image",
                "sign",
                "--key",
                str(signer["other"]),
                "--password-file",
                str(signer["pw"]),
                ref,
            ]
        )
        assert rc == 0
    reqs: list[dict[str, Any]] = [{"type": "sigstoreSigned", "keyPath": str(signer["trusted.pub"])}]
    if case == "reject":
        reqs = [{"type": "reject"}]
    root = tmp_path / "store"
    capsys.readouterr()

    assert _pull(root, _policy(tmp_path, registry, reqs), ref) != 0
    err = capsys.readouterr().err
    assert (
        f'rejected by policy {tmp_path / "policy.json"} scope transports.docker["{registry.host}"]'
        in err
    )
    assert why in err
    assert _blobs(root) == []
    assert main(["--root", str(root), "image", "ls", "-q"]) == 0
    assert ref not in capsys.readouterr().out


def test_signed_image_is_pulled(
    registry: Registry,
    images: FixtureImages,
    signer: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = images.push(registry, "busybox", "trust-gate-signed")
    rc = main(
        [
            "image",
            "sign",
            "--key",
            str(signer["trusted"]),
            "--password-file",
            str(signer["pw"]),
            ref,
        ]
    )
    assert rc == 0
    root = tmp_path / "store"
    reqs = [{"type": "sigstoreSigned", "keyPath": str(signer["trusted.pub"])}]
    assert _pull(root, _policy(tmp_path, registry, reqs), ref) == 0
    assert len(_blobs(root)) >= 3  # manifest, config, at least one layer
    capsys.readouterr()
    assert main(["--root", str(root), "image", "ls", "-q"]) == 0
    assert ref in capsys.readouterr().out


def test_malformed_policy_stops_the_pull(
    registry: Registry, images: FixtureImages, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = images.push(registry, "busybox", "trust-gate-badpolicy")
    policy = tmp_path / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}], "transports": []}')
    root = tmp_path / "store"
    assert _pull(root, policy, ref) != 0
    assert f"policy {policy} at transports: want a JSON object" in capsys.readouterr().err
    assert _blobs(root) == []


def test_multi_platform_image_is_signed_and_checked_on_its_index(
    registry: Registry,
    images: FixtureImages,
    signer: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """cosign signs what the tag names (the index); the pull checks that same digest."""
    ref = images.push(registry, "multi", "trust-gate-multi")
    rc = main(
        [
            "image",
            "sign",
            "--key",
            str(signer["trusted"]),
            "--password-file",
            str(signer["pw"]),
            ref,
        ]
    )
    assert rc == 0
    index_digest = str(images.descriptor("multi")["digest"])
    assert index_digest in capsys.readouterr().out
    root = tmp_path / "store"
    reqs = [{"type": "sigstoreSigned", "keyPath": str(signer["trusted.pub"])}]
    assert _pull(root, _policy(tmp_path, registry, reqs), ref) == 0
    assert _blobs(root) != []
