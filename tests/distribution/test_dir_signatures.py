"""Signatures travel with ``image copy`` between a registry and ``dir:`` (skopeo's form).

A registry image signed by ``image sign`` is copied to ``dir:``: its ``.sig`` attachment
becomes ``signature-N`` files that ``image verify dir:`` accepts with the key and skopeo
reads as a dir: image. Copied on to another repository, the signatures are pushed back
as that repository's ``.sig`` attachment, and ``image verify docker://`` accepts them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.images import FixtureImages
from harness.registry import Registry
from pycontainers.distribution.sigstore import DIR_SIGNATURE_PREFIX, SIMPLE_SIGNING_MEDIA_TYPE
from pycontainers.reconciler.cli import main

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("dirsig-keys")
    pw = d / "password"
    pw.write_text("dir sig\n")
    assert main(["image", "keygen", "--password-file", str(pw), str(d / "k")]) == 0
    return {"password": pw, "key": d / "k.key", "pub": d / "k.pub"}


def _policy(path: Path, transports: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"default": [{"type": "reject"}], "transports": transports}))
    return path


def test_signatures_copy_to_dir_and_back_to_a_registry(
    registry: Registry,
    images: FixtureImages,
    key: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = images.push(registry, "busybox", "dirsig-src")
    sign = ["image", "sign", "--key", str(key["key"]), "--password-file", str(key["password"])]
    assert main([*sign, ref]) == 0
    signed = {"type": "sigstoreSigned", "keyPath": str(key["pub"])}
    accept = [{"type": "insecureAcceptAnything"}]
    policy = _policy(
        tmp_path / "policy.json",
        {"docker": {registry.host: [signed]}, "dir": {"": accept}},
    )
    root = ["--root", str(tmp_path / "storage"), "--policy", str(policy)]
    out = tmp_path / "img"
    assert main([*root, "image", "copy", "-q", f"docker://{ref}", f"dir:{out}"]) == 0

    sig_file = (out / "signature-1").read_bytes()
    assert sig_file.startswith(DIR_SIGNATURE_PREFIX)
    doc = json.loads(sig_file[len(DIR_SIGNATURE_PREFIX) :])
    assert doc["mimeType"] == SIMPLE_SIGNING_MEDIA_TYPE
    assert set(doc) == {"mimeType", "payload", "annotations"}
    assert not (out / "signature-2").exists()

    # skopeo reads the directory (signature files included) as a dir: image
    inspected = subprocess.run(
        ["skopeo", "inspect", f"dir:{out}"], check=True, capture_output=True, text=True
    )
    assert json.loads(inspected.stdout)["Layers"]

    verify_policy = _policy(tmp_path / "verify.json", {"docker": {"": [signed]}})
    capsys.readouterr()
    rc = main(["--policy", str(verify_policy), "image", "verify", "--reference", ref, f"dir:{out}"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "signature-1: verified" in text

    # A tampered signature file is refused: the check reads the files we wrote.
    (tmp_path / "bad").mkdir()
    for f in out.iterdir():
        (tmp_path / "bad" / f.name).write_bytes(f.read_bytes())
    (tmp_path / "bad" / "signature-1").write_bytes(
        sig_file.replace(b'"payload":"', b'"payload":"A')
    )
    rc = main(
        [
            "--policy",
            str(verify_policy),
            "image",
            "verify",
            "--reference",
            ref,
            f"dir:{tmp_path}/bad",
        ]
    )
    assert rc == 1

    # dir: -> another repository: the signature becomes that repository's .sig attachment
    dest = f"{registry.host}/dirsig-dst:latest"
    assert main([*root, "image", "copy", "-q", f"dir:{out}", f"docker://{dest}"]) == 0
    digest = httpx.head(
        f"{registry.url}/v2/dirsig-dst/manifests/latest",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).headers["Docker-Content-Digest"]
    attachment = httpx.get(
        f"{registry.url}/v2/dirsig-dst/manifests/{digest.replace(':', '-')}.sig",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert attachment.status_code == 200
    assert len(attachment.json()["layers"]) == 1
    capsys.readouterr()
    rc = main(
        ["--policy", str(verify_policy), "image", "verify", "--reference", ref, f"docker://{dest}"]
    )
    text = capsys.readouterr().out
    assert rc == 0, text

    # copying again adds nothing (the same signature is recognised)
    assert main([*root, "image", "copy", "-q", f"dir:{out}", f"docker://{dest}"]) == 0
    again = httpx.get(
        f"{registry.url}/v2/dirsig-dst/manifests/{digest.replace(':', '-')}.sig",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert len(again.json()["layers"]) == 1


def test_skopeo_reads_and_keeps_the_signatures_we_write(
    registry: Registry,
    images: FixtureImages,
    key: dict[str, Path],
    tmp_path: Path,
) -> None:
    """containers/image as the oracle: ``skopeo copy dir:OURS dir:THEIRS`` parses our
    ``signature-1`` (it refuses blobs it cannot parse) and writes it out byte for byte.
    Debian's skopeo is built with sigstore verification disabled ("Debian-local change:
    sigstore disabled"), so it cannot check the signature itself; our verifier does,
    against the cosign test vectors, in test_verify_cosign_vectors.py."""
    ref = images.push(registry, "busybox", "dirsig-skopeo")
    sign = ["image", "sign", "--key", str(key["key"]), "--password-file", str(key["password"])]
    assert main([*sign, ref]) == 0
    accept = tmp_path / "accept.json"
    accept.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    ours = tmp_path / "ours"
    root = ["--root", str(tmp_path / "storage"), "--policy", str(accept)]
    assert main([*root, "image", "copy", "-q", f"docker://{ref}", f"dir:{ours}"]) == 0

    theirs = tmp_path / "theirs"
    cmd = ["skopeo", "--policy", str(accept), "copy", "-q", f"dir:{ours}", f"dir:{theirs}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (theirs / "signature-1").read_bytes() == (ours / "signature-1").read_bytes()
    assert not (theirs / "signature-2").exists()

    # a signature file skopeo cannot parse makes it refuse: it did read ours
    (ours / "signature-1").write_bytes(b"\0sigstore-json\nnot json")
    bad = subprocess.run([*cmd[:-1], f"dir:{tmp_path}/bad"], capture_output=True, text=True)
    assert bad.returncode != 0
