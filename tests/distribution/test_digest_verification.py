"""Digests parse strictly and streams are verified while they flow."""

from __future__ import annotations

import hashlib

import pytest

from pycontainers.distribution.digest import Digest, DigestVerifier
from pycontainers.distribution.errors import DigestError, DigestMismatch, SizeMismatch

DATA = b"hello world\n" * 1000
GOOD = Digest("sha256", hashlib.sha256(DATA).hexdigest())


def test_parse_round_trip() -> None:
    assert Digest.parse(str(GOOD)) == GOOD
    assert Digest.of_bytes(DATA) == GOOD


@pytest.mark.parametrize(
    "text", ["sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha1:" + "a" * 40, "nocolon", ""]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(DigestError):
        Digest.parse(text)


def test_verifier_accepts_exact_stream() -> None:
    v = DigestVerifier(GOOD, len(DATA))
    for i in range(0, len(DATA), 777):
        v.update(DATA[i : i + 777])
    v.verify()


def test_verifier_cuts_off_excess_as_it_arrives() -> None:
    v = DigestVerifier(GOOD, len(DATA), what="blob x")
    v.update(DATA)
    with pytest.raises(SizeMismatch, match="blob x: more data"):
        v.update(b"!")


def test_verifier_rejects_short_and_wrong() -> None:
    short = DigestVerifier(GOOD, len(DATA))
    short.update(DATA[:-1])
    with pytest.raises(SizeMismatch):
        short.verify()
    wrong = DigestVerifier(GOOD, len(DATA))
    wrong.update(DATA[:-1] + b"?")
    with pytest.raises(DigestMismatch, match="content hashes to sha256:"):
        wrong.verify()


def test_snapshot_resumes_hash() -> None:
    v = DigestVerifier(GOOD, len(DATA))
    v.update(DATA[:5000])
    state = v.snapshot()
    v.update(b"garbage")
    v.restore(state)
    v.update(DATA[5000:])
    v.verify()
