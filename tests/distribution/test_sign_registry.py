"""``image sign`` against the real registry, checked by ``image verify`` and by raw reads.

Images are pushed with skopeo (the ``images`` fixture); signatures are read back both
through our client and with plain HTTP, so a bug in our client cannot hide a wrong
attachment. Each test uses its own repository.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution import cosign_key
from pycontainers.distribution.sigstore import DIR_SIGNATURE_PREFIX
from pycontainers.reconciler.cli import main

pytestmark = pytest.mark.registry

VECTORS = Path(__file__).parent / "fixtures" / "sigstore-cosign"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two key pairs written by ``image keygen`` and the password file that opens them."""
    d = tmp_path_factory.mktemp("keys")
    pw = d / "password"
    pw.write_text("correct horse\n")
    for name in ("alice", "mallory"):
        assert main(["image", "keygen", "--password-file", str(pw), str(d / name)]) == 0
    return {
        "password": pw,
        "alice": d / "alice.key",
        "alice.pub": d / "alice.pub",
        "mallory": d / "mallory.key",
        "mallory.pub": d / "mallory.pub",
    }


def _sign(keys: dict[str, Path], who: str, ref: str, *extra: str) -> None:
    rc = main(
        [
            "image",
            "sign",
            "--key",
            str(keys[who]),
            "--password-file",
            str(keys["password"]),
            *extra,
            ref,
        ]
    )
    assert rc == 0


def _policy(tmp_path: Path, scope: str, req: dict[str, Any]) -> Path:
    path = tmp_path / "policy.json"
    doc = {"default": [{"type": "reject"}], "transports": {"docker": {scope: [req]}}}
    path.write_text(json.dumps(doc))
    return path


def _keyed(pub: Path, identity: str | None = None) -> dict[str, Any]:
    req: dict[str, Any] = {"type": "sigstoreSigned", "keyPath": str(pub)}
    if identity:
        req["signedIdentity"] = {"type": identity}
    return req


def _verify(policy: Path, ref: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["--policy", str(policy), "image", "verify", f"docker://{ref}"])
    return rc, capsys.readouterr().out


def _raw(registry: Registry, repo: str, reference: str) -> tuple[bytes, str]:
    resp = httpx.get(
        f"{registry.url}/v2/{repo}/manifests/{reference}",
        headers={"Accept": f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"},
    )
    resp.raise_for_status()
    return resp.content, resp.headers["Docker-Content-Digest"]


def _put(registry: Registry, repo: str, tag: str, manifest: bytes) -> None:
    resp = httpx.put(
        f"{registry.url}/v2/{repo}/manifests/{tag}",
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    resp.raise_for_status()


def _sig_tag(digest: str) -> str:
    return digest.replace(":", "-") + ".sig"


def test_signed_image_verifies_with_its_key_and_not_another(
    registry: Registry,
    images: FixtureImages,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = images.push(registry, "busybox", "trust-signed")
    _sign(keys, "alice", ref)
    capsys.readouterr()

    good = _policy(tmp_path, registry.host, _keyed(keys["alice.pub"]))
    rc, out = _verify(good, ref, capsys)
    assert rc == 0, out
    assert f'scope: transports.docker["{registry.host}"]' in out

    bad = _policy(tmp_path, f"{registry.host}/trust-signed", _keyed(keys["mallory.pub"]))
    rc, out = _verify(bad, ref, capsys)
    assert rc == 1, out
    assert f'scope: transports.docker["{registry.host}/trust-signed"]' in out
    assert "why: signature by another key" in out


def test_signature_has_the_structure_of_the_cosign_vectors(
    registry: Registry, images: FixtureImages, keys: dict[str, Path], tmp_path: Path
) -> None:
    ref = images.push(registry, "busybox", "trust-structure")
    _sign(keys, "alice", ref)
    _, digest = _raw(registry, "trust-structure", "latest")
    raw, _ = _raw(registry, "trust-structure", _sig_tag(digest))
    manifest = json.loads(raw)

    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    (layer,) = manifest["layers"]
    vector_blob = (VECTORS / "dir-img-cosign-valid-with-tag" / "signature-1").read_bytes()
    vector = json.loads(vector_blob[len(DIR_SIGNATURE_PREFIX) :])
    assert layer["mediaType"] == vector["mimeType"]
    assert set(layer["annotations"]) == set(vector["annotations"])

    payload = httpx.get(f"{registry.url}/v2/trust-structure/blobs/{layer['digest']}").content
    ours, theirs = json.loads(payload), json.loads(base64.b64decode(vector["payload"]))
    assert _shape(ours) == _shape(theirs)
    assert ours["critical"]["image"]["docker-manifest-digest"] == digest
    assert ours["critical"]["identity"]["docker-reference"] == ref

    config = httpx.get(
        f"{registry.url}/v2/trust-structure/blobs/{manifest['config']['digest']}"
    ).json()
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer["digest"]]}

    # An independent implementation checks the crypto: openssl verifies the ECDSA
    # signature over the exact payload bytes with the public key.
    work = tmp_path
    (work / "payload").write_bytes(payload)
    sig = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    (work / "sig.der").write_bytes(sig)
    cmd = ["openssl", "dgst", "-sha256", "-verify", str(keys["alice.pub"]), "-signature"]
    ok = subprocess.run([*cmd, str(work / "sig.der"), str(work / "payload")], capture_output=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (work / "payload").write_bytes(payload.replace(b"critical", b"Critical"))
    bad = subprocess.run([*cmd, str(work / "sig.der"), str(work / "payload")], capture_output=True)
    assert bad.returncode != 0


def _shape(doc: Any) -> Any:
    """The keys and value types of a JSON document, not its values."""
    if isinstance(doc, dict):
        return {k: _shape(v) for k, v in doc.items()}
    return type(doc).__name__


def test_signing_twice_keeps_both_signatures(
    registry: Registry,
    images: FixtureImages,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = images.push(registry, "busybox", "trust-twice")
    _sign(keys, "alice", ref)
    _sign(keys, "mallory", ref)
    _, digest = _raw(registry, "trust-twice", "latest")
    raw, _ = _raw(registry, "trust-twice", _sig_tag(digest))
    assert len(json.loads(raw)["layers"]) == 2
    capsys.readouterr()
    for who in ("alice.pub", "mallory.pub"):
        rc, out = _verify(_policy(tmp_path, registry.host, _keyed(keys[who])), ref, capsys)
        assert rc == 0, out


def test_unsigned_image_is_refused_under_sigstore_signed(
    registry: Registry,
    images: FixtureImages,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = images.push(registry, "busybox", "trust-unsigned")
    policy = _policy(tmp_path, registry.host, _keyed(keys["alice.pub"]))
    rc = main(["--policy", str(policy), "image", "verify", ref])  # a bare reference
    out = capsys.readouterr().out
    assert rc == 1
    assert out.startswith(f"rejected: docker://{ref}")
    assert "why: no signature" in out
    assert "a signature is required, but none was found" in out


def test_reject_scope_refuses_even_a_signed_image(
    registry: Registry,
    images: FixtureImages,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = images.push(registry, "busybox", "trust-rejected")
    _sign(keys, "alice", ref)
    capsys.readouterr()
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "default": [{"type": "insecureAcceptAnything"}],
                "transports": {
                    "docker": {
                        registry.host: [_keyed(keys["alice.pub"])],
                        f"{registry.host}/trust-rejected": [{"type": "reject"}],
                    }
                },
            }
        )
    )
    rc, out = _verify(policy, ref, capsys)
    assert rc == 1
    assert f'scope: transports.docker["{registry.host}/trust-rejected"]' in out
    assert "failed: reject" in out
    assert "why: rejected by policy" in out


def test_signature_copied_onto_another_images_tag_is_refused(
    registry: Registry,
    images: FixtureImages,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    signed = images.push(registry, "busybox", "trust-copied:signed")
    other = images.push(registry, "layered", "trust-copied:other")
    _sign(keys, "alice", signed)
    _, signed_digest = _raw(registry, "trust-copied", "signed")
    _, other_digest = _raw(registry, "trust-copied", "other")
    assert signed_digest != other_digest
    sig_manifest, _ = _raw(registry, "trust-copied", _sig_tag(signed_digest))
    _put(registry, "trust-copied", _sig_tag(other_digest), sig_manifest)
    capsys.readouterr()

    req = _keyed(keys["alice.pub"], "matchRepository")
    rc, out = _verify(_policy(tmp_path, registry.host, req), other, capsys)
    assert rc == 1
    assert "why: payload for another digest" in out
    assert f"payload signs manifest {signed_digest}, but this image's manifest is" in out


def test_tampered_signature_is_refused(
    registry: Registry,
    images: FixtureImages,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = images.push(registry, "busybox", "trust-tampered")
    _sign(keys, "alice", ref)
    _, digest = _raw(registry, "trust-tampered", "latest")
    raw, _ = _raw(registry, "trust-tampered", _sig_tag(digest))
    manifest = json.loads(raw)
    annotations = manifest["layers"][0]["annotations"]
    sig = bytearray(base64.b64decode(annotations["dev.cosignproject.cosign/signature"]))
    sig[-1] ^= 0x01
    annotations["dev.cosignproject.cosign/signature"] = base64.b64encode(sig).decode()
    _put(registry, "trust-tampered", _sig_tag(digest), json.dumps(manifest).encode())
    capsys.readouterr()

    rc, out = _verify(_policy(tmp_path, registry.host, _keyed(keys["alice.pub"])), ref, capsys)
    assert rc == 1
    assert "why: signature by another key" in out
    assert "tampered with" in out


def test_sign_with_wrong_password_fails_cleanly(
    registry: Registry,
    images: FixtureImages,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = images.push(registry, "busybox", "trust-wrongpw")
    wrong = tmp_path / "pw"
    wrong.write_text("not it\n")
    rc = main(["image", "sign", "--key", str(keys["alice"]), "--password-file", str(wrong), ref])
    err = capsys.readouterr().err
    assert rc == 2
    assert "wrong password or corrupt key" in err
    assert str(keys["alice"]) in err
    _, digest = _raw(registry, "trust-wrongpw", "latest")
    resp = httpx.get(f"{registry.url}/v2/trust-wrongpw/manifests/{_sig_tag(digest)}")
    assert resp.status_code == 404


def test_cosign_key_from_the_library_signs_too(
    registry: Registry,
    images: FixtureImages,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An Ed25519 key (not keygen's default) round-trips through sign and verify."""
    key = cosign_key.generate("ed25519")
    (tmp_path / "ed.key").write_bytes(cosign_key.encrypt_private_key(key, b""))
    (tmp_path / "ed.pub").write_bytes(cosign_key.public_key_pem(key))
    (tmp_path / "empty").write_text("")
    ref = images.push(registry, "busybox", "trust-ed25519")
    rc = main(
        [
            "image",
            "sign",
            "--key",
            str(tmp_path / "ed.key"),
            "--password-file",
            str(tmp_path / "empty"),
            ref,
        ]
    )
    assert rc == 0
    capsys.readouterr()
    rc, out = _verify(_policy(tmp_path, registry.host, _keyed(tmp_path / "ed.pub")), ref, capsys)
    assert rc == 0, out


def test_sign_and_verify_through_bearer_token_auth(
    registry_token: Registry,
    images: FixtureImages,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Signing needs push scope on the repository, verifying pull scope: tokens for both."""
    reg = registry_token
    ref = images.push(reg, "busybox", "trust-token")
    creds = f"--creds={reg.username}:{reg.password}"
    _sign(keys, "alice", ref, creds)
    capsys.readouterr()
    policy = _policy(tmp_path, reg.host, _keyed(keys["alice.pub"]))
    rc = main(["--policy", str(policy), "image", "verify", creds, f"docker://{ref}"])
    out = capsys.readouterr().out
    assert rc == 0, out
    no_creds = f"--authfile={tmp_path / 'none.json'}"
    rc = main(["--policy", str(policy), "image", "verify", no_creds, f"docker://{ref}"])
    assert rc == 2  # anonymous: the registry refuses, which is an error, not a verdict
    assert "error:" in capsys.readouterr().err


def test_sign_identity_overrides_the_signed_reference(
    registry: Registry,
    images: FixtureImages,
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A name-only identity (cosign's style) needs matchRepository, as with cosign's vectors."""
    ref = images.push(registry, "busybox", "trust-identity")
    _sign(keys, "alice", ref, f"--sign-identity={registry.host}/trust-identity")
    capsys.readouterr()
    rc, out = _verify(_policy(tmp_path, registry.host, _keyed(keys["alice.pub"])), ref, capsys)
    assert rc == 1
    assert "why: identity mismatch" in out
    assert f"signed identity '{registry.host}/trust-identity' does not match" in out
    req = _keyed(keys["alice.pub"], "matchRepository")
    rc, out = _verify(_policy(tmp_path, registry.host, req), ref, capsys)
    assert rc == 0, out
