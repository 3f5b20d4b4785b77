"""Every row of the cosign/skopeo vector table gets containers/image's verdict.

The vectors (fixtures/sigstore-cosign, see its README) are real signatures made by cosign
and skopeo, so they are the peer oracle: Debian's skopeo has sigstore patched out. Each
row runs ``pycontainers --policy P image verify --reference REF dir:CASE`` with a policy
whose ``docker`` scope for REF's registry names the key(s) and the row's signedIdentity,
and a default of ``reject`` (so accepting proves the scope was found).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pycontainers.reconciler.cli import main

VECTORS = Path(__file__).parent / "fixtures" / "sigstore-cosign"
REGISTRY = "192.168.64.2:5000"
SAMPLE = f"{REGISTRY}/cosign-signed-single-sample:latest"
MATCH_REPOSITORY = {"type": "matchRepository"}


@dataclass(frozen=True)
class Row:
    case: str
    keys: tuple[str, ...]
    identity: dict[str, Any] | None
    ref: str
    accept: bool
    why: str | None = None  # the verdict's "why:" line on rejection
    said: str = ""  # a phrase the explanation must contain
    extra: dict[str, Any] = field(default_factory=dict)


ROWS = [
    Row("dir-img-cosign-valid", ("cosign.pub",), MATCH_REPOSITORY, SAMPLE, True),
    Row(
        "dir-img-cosign-valid",
        ("cosign2.pub",),
        MATCH_REPOSITORY,
        SAMPLE,
        False,
        "signature by another key",
        "does not verify with the trusted key",
    ),
    Row("dir-img-cosign-valid", ("cosign.pub", "cosign2.pub"), MATCH_REPOSITORY, SAMPLE, True),
    Row(
        "dir-img-cosign-valid",
        ("cosign.pub",),
        {"type": "exactReference", "dockerReference": "this/does-not:match"},
        SAMPLE,
        False,
        "identity mismatch",
        "under signedIdentity exactReference this/does-not:match",
    ),
    Row(
        "dir-img-cosign-valid",
        ("cosign.pub",),
        {"type": "matchExact"},
        SAMPLE,
        False,
        "identity mismatch",
        f"signed identity '{REGISTRY}/cosign-signed-single-sample' does not match",
    ),
    # Not in the table but implied by it: the default signedIdentity
    # (matchRepoDigestOrExact) refuses cosign's name-only identity for a tagged image.
    Row("dir-img-cosign-valid", ("cosign.pub",), None, SAMPLE, False, "identity mismatch"),
    Row("dir-img-cosign-valid-2", ("cosign.pub",), MATCH_REPOSITORY, SAMPLE, True),
    Row(
        "dir-img-cosign-valid-with-tag",
        ("cosign.pub",),
        {"type": "matchExact"},
        f"{REGISTRY}/skopeo-signed:tag",
        True,
    ),
    Row(
        "dir-img-cosign-valid-with-tag",
        ("cosign.pub",),
        {"type": "matchExact"},
        f"{REGISTRY}/skopeo-signed:othertag",
        False,
        "identity mismatch",
    ),
    Row(
        "dir-img-cosign-modified-manifest",
        ("cosign.pub",),
        MATCH_REPOSITORY,
        SAMPLE,
        False,
        "payload for another digest",
        "payload signs manifest sha256:634a8f35",
    ),
    Row(
        "dir-img-cosign-manifest-digest-error",
        ("cosign.pub",),
        MATCH_REPOSITORY,
        SAMPLE,
        False,
        "unsupported",
        "docker schema 1",
    ),
    Row(
        "dir-img-cosign-no-manifest",
        ("cosign.pub",),
        MATCH_REPOSITORY,
        SAMPLE,
        False,
        "no manifest",
    ),
    Row(
        "unknown-key",  # assembled: unknown-cosign-key.signature + the valid manifest
        ("cosign.pub",),
        MATCH_REPOSITORY,
        SAMPLE,
        False,
        "signature by another key",
    ),
    Row(
        "invalid-signature",  # assembled: the valid payload, annotation = b64("invalid signature")
        ("cosign.pub",),
        MATCH_REPOSITORY,
        SAMPLE,
        False,
        "signature by another key",
    ),
    Row(
        "dir-img-cosign-other-attachment",
        ("cosign.pub",),
        MATCH_REPOSITORY,
        SAMPLE,
        False,
        "no signature",
        "1 other attachments ignored",
    ),
    # The README's table names cosign.pub for this row, but the signature verifies with
    # cosign2.pub only (containers/image's own test uses cosign2.pub): both are checked.
    Row(
        "dir-img-cosign-key-rekor-valid",
        ("cosign2.pub",),
        MATCH_REPOSITORY,
        f"{REGISTRY}/cosign-signed/key-1:latest",
        True,
    ),
    Row(
        "dir-img-cosign-key-rekor-valid",
        ("cosign.pub",),
        MATCH_REPOSITORY,
        f"{REGISTRY}/cosign-signed/key-1:latest",
        False,
        "signature by another key",
    ),
    # Certificate-signed images are out of scope for key-based verification: a key policy
    # refuses them (another key), a fulcio/pki policy fails closed.
    Row(
        "dir-img-cosign-fulcio-rekor-valid",
        ("cosign.pub",),
        MATCH_REPOSITORY,
        SAMPLE,
        False,
        "signature by another key",
    ),
    Row(
        "dir-img-cosign-pki-valid",
        ("cosign.pub",),
        MATCH_REPOSITORY,
        SAMPLE,
        False,
        "signature by another key",
    ),
    Row(
        "dir-img-cosign-pki-valid",
        (),
        MATCH_REPOSITORY,
        SAMPLE,
        False,
        "unsupported",
        "pki certificates is not supported",
        extra={"pki": {"caRootsPath": "/nonexistent/roots.pem"}},
    ),
    # containers/image: one valid signature among rejected ones is enough.
    Row("dir-img-cosign-mixed", ("cosign.pub",), MATCH_REPOSITORY, SAMPLE, True),
]


def _case_dir(case: str, tmp_path: Path) -> Path:
    if case == "unknown-key":
        d = tmp_path / case
        d.mkdir()
        shutil.copy(VECTORS / "dir-img-cosign-valid" / "manifest.json", d)
        shutil.copy(VECTORS / "unknown-cosign-key.signature", d / "signature-1")
        return d
    if case == "invalid-signature":
        d = tmp_path / case
        d.mkdir()
        shutil.copy(VECTORS / "dir-img-cosign-valid" / "manifest.json", d)
        blob = (VECTORS / "dir-img-cosign-valid" / "signature-1").read_bytes()
        prefix = b"\x00sigstore-json\n"
        doc = json.loads(blob[len(prefix) :])
        doc["annotations"]["dev.cosignproject.cosign/signature"] = base64.b64encode(
            b"invalid signature"
        ).decode()
        (d / "signature-1").write_bytes(prefix + json.dumps(doc).encode())
        return d
    return VECTORS / case


def _policy(row: Row, tmp_path: Path) -> Path:
    req: dict[str, Any] = {"type": "sigstoreSigned", **row.extra}
    if len(row.keys) == 1:
        req["keyPath"] = str(VECTORS / row.keys[0])
    elif row.keys:
        req["keyPaths"] = [str(VECTORS / k) for k in row.keys]
    if row.identity is not None:
        req["signedIdentity"] = row.identity
    doc = {"default": [{"type": "reject"}], "transports": {"docker": {REGISTRY: [req]}}}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "row",
    ROWS,
    ids=[f"{r.case}-{'+'.join(r.keys) or 'nokey'}-{r.ref.rsplit('/', 1)[1]}" for r in ROWS],
)
def test_vector_verdict(row: Row, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = _policy(row, tmp_path)
    source = _case_dir(row.case, tmp_path)
    rc = main(["--policy", str(policy), "image", "verify", "--reference", row.ref, f"dir:{source}"])
    out = capsys.readouterr().out
    assert f'scope: transports.docker["{REGISTRY}"]' in out
    if row.accept:
        assert rc == 0, out
        assert out.startswith("accepted: ")
        assert "verified, signs sha256:" in out
    else:
        assert rc == 1, out
        assert out.startswith("rejected: ")
        assert f"why: {row.why}" in out
    assert row.said in out


def test_vector_through_console_script(tmp_path: Path) -> None:
    """The installed ``pycontainers`` command gives the same verdicts and exit codes."""
    script = Path(sys.executable).parent / "pycontainers"
    good = _policy(ROWS[0], tmp_path)
    base = [str(script), "--policy", str(good), "image", "verify", "--reference", SAMPLE]
    ok = subprocess.run([*base, f"dir:{VECTORS}/dir-img-cosign-valid"], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(b"accepted: ")
    bad = subprocess.run(
        [*base, f"dir:{VECTORS}/dir-img-cosign-modified-manifest"], capture_output=True
    )
    assert bad.returncode == 1
    assert b"why: payload for another digest" in bad.stdout


def test_key_data_in_policy_accepts_like_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = base64.b64encode((VECTORS / "cosign.pub").read_bytes()).decode()
    req = {"type": "sigstoreSigned", "keyData": key, "signedIdentity": MATCH_REPOSITORY}
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"default": [req]}))
    rc = main(
        [
            "--policy",
            str(policy),
            "image",
            "verify",
            "--reference",
            SAMPLE,
            f"dir:{VECTORS}/dir-img-cosign-valid",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "scope: default" in out


def test_malformed_policy_is_an_error_not_a_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything", "keyPath": "/x"}]}')
    rc = main(
        [
            "--policy",
            str(policy),
            "image",
            "verify",
            "--reference",
            SAMPLE,
            f"dir:{VECTORS}/dir-img-cosign-valid",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    assert "unknown field 'keyPath'" in captured.err
    assert str(policy) in captured.err
