"""cosign's encrypted private keys: read theirs, write ours in the same format; keygen CLI.

The envelope vectors are go-securesystemslib's own (encrypted_test.go: passphrase
"supersecret", plaintext "reallyimportant", JSON-marshalled by its Marshal for the three
KDF strengths), so decryption is checked against the Go implementation cosign uses.
"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pycontainers.distribution import cosign_key
from pycontainers.distribution.cosign_key import SigningKeyError
from pycontainers.distribution.sigstore import Signature, check_signature, sign
from pycontainers.reconciler.cli import main

GO_DECRYPT_VECTOR = (
    b'{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},'
    b'"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},'
    b'"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},'
    b'"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}'
)
GO_KDF_VECTORS = {
    "legacy": (
        b'{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},'
        b'"salt":"WO3mVvyTwJ9vwT5/Tk5OW5WPIBUofMjcpEfrLnfY4uA="},'
        b'"cipher":{"name":"nacl/secretbox","nonce":"tCy7HcTFr4uxv4Nrg/DWmncuZ148U1MX"},'
        b'"ciphertext":"08n43p5G5yviPEZpO7tPPF4aZQkWiWjkv4taFdhDBA0tamKH4nw="}'
    ),
    "standard": (
        b'{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},'
        b'"salt":"FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},'
        b'"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},'
        b'"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}'
    ),
    "owasp": (
        b'{"kdf":{"name":"scrypt","params":{"N":131072,"r":8,"p":1},'
        b'"salt":"m38E3kouJTtiheLQN22NQ8DTito5hrjpUIskqcd375k="},'
        b'"cipher":{"name":"nacl/secretbox","nonce":"Y6PM13yA+o44pE/W1ZBwczeGnTV/m9Zc"},'
        b'"ciphertext":"6H8sqj1K6B6yDjtH5AQ6lbFigg/C2yDDJc4rYJ79w9aVPImFIPI="}'
    ),
}


def test_decrypts_go_securesystemslib_output() -> None:
    plain = cosign_key.decrypt_securesystemslib(GO_DECRYPT_VECTOR, b"supersecret")
    assert plain == b"reallyimportant"


@pytest.mark.parametrize("strength", sorted(GO_KDF_VECTORS))
def test_decrypts_every_kdf_strength_go_writes(strength: str) -> None:
    plain = cosign_key.decrypt_securesystemslib(GO_KDF_VECTORS[strength], b"supersecret")
    # Marshal() JSON-encodes its input, so the plaintext is a JSON string of base64.
    assert base64.b64decode(json.loads(plain)) == b"reallyimportant"


def test_wrong_password_is_refused() -> None:
    with pytest.raises(SigningKeyError, match="wrong password or corrupt key"):
        cosign_key.decrypt_securesystemslib(GO_DECRYPT_VECTOR, b"supersecreT")


def test_unsupported_scrypt_parameters_are_refused_before_deriving() -> None:
    """go-securesystemslib's own vector: N=99 r=99 p=99 must not be attempted."""
    enc = (
        b'{"kdf":{"name":"scrypt","params":{"N":99,"r":99,"p":99},'
        b'"salt":"cZFcQJdwPhPyhU1R4qkl0qVOIjZd4V/7LYYAavq166k="},'
        b'"cipher":{"name":"nacl/secretbox","nonce":"7vhRS7j0hEPBWV05skAdgLj81AkGeE7U"},'
        b'"ciphertext":"6WYU/YSXVbYzl/NzaeAzmjLyfFhOOjLc0d8/GFV0aBFdJvyCcXc="}'
    )
    with pytest.raises(SigningKeyError, match="unsupported scrypt parameters N=99 r=99 p=99"):
        cosign_key.decrypt_securesystemslib(enc, b"supersecret")


def test_tampered_ciphertext_is_refused() -> None:
    doc = json.loads(GO_DECRYPT_VECTOR)
    raw = bytearray(base64.b64decode(doc["ciphertext"]))
    raw[0] ^= 0xFF
    doc["ciphertext"] = base64.b64encode(raw).decode()
    with pytest.raises(SigningKeyError, match="decryption failed"):
        cosign_key.decrypt_securesystemslib(json.dumps(doc).encode(), b"supersecret")


@pytest.mark.parametrize("algorithm", cosign_key.ALGORITHMS)
def test_written_keys_round_trip_and_sign(algorithm: str) -> None:
    key = cosign_key.generate(algorithm)
    pem = cosign_key.encrypt_private_key(key, b"pw")
    assert pem.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    loaded = cosign_key.decrypt_private_key(pem, b"pw")
    pub = cosign_key.load_public_key(cosign_key.public_key_pem(key))
    payload = b'{"critical":{}}'
    raw = base64.b64decode(sign(loaded, payload))
    assert check_signature(pub, payload, raw)
    assert not check_signature(pub, payload + b" ", raw)


def test_written_envelope_is_what_go_expects() -> None:
    """Field names, cipher, KDF parameters cosign writes (legacy strength), sizes."""
    pem = cosign_key.encrypt_private_key(cosign_key.generate(), b"pw")
    body = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    doc = json.loads(body)
    assert doc["kdf"]["name"] == "scrypt"
    assert doc["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert len(base64.b64decode(doc["kdf"]["salt"])) == 32
    assert doc["cipher"]["name"] == "nacl/secretbox"
    assert len(base64.b64decode(doc["cipher"]["nonce"])) == 24


def test_old_cosign_pem_type_is_accepted() -> None:
    key = cosign_key.generate()
    pem = cosign_key.encrypt_private_key(key, b"pw").replace(
        b"ENCRYPTED SIGSTORE PRIVATE KEY", b"ENCRYPTED COSIGN PRIVATE KEY"
    )
    assert isinstance(cosign_key.decrypt_private_key(pem, b"pw"), ec.EllipticCurvePrivateKey)


def test_unencrypted_pem_is_refused() -> None:
    pem = cosign_key.public_key_pem(cosign_key.generate())
    with pytest.raises(SigningKeyError, match="unsupported pem type 'PUBLIC KEY'"):
        cosign_key.decrypt_private_key(pem, b"pw", source="key /x")


def test_fixture_public_keys_load() -> None:
    vectors = Path(__file__).parent / "fixtures" / "sigstore-cosign"
    assert isinstance(
        cosign_key.load_public_key((vectors / "cosign.pub").read_bytes()), ec.EllipticCurvePublicKey
    )
    assert isinstance(
        cosign_key.load_public_key((vectors / "some-rsa-key.pub").read_bytes()), rsa.RSAPublicKey
    )


def test_keygen_writes_a_usable_pair_with_private_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(cosign_key.PASSWORD_ENV, "from-env")
    prefix = tmp_path / "signer"
    assert main(["image", "keygen", "--algorithm", "ed25519", str(prefix)]) == 0
    key_file, pub_file = tmp_path / "signer.key", tmp_path / "signer.pub"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert f"private key written to {key_file}" in capsys.readouterr().out
    key = cosign_key.decrypt_private_key(key_file.read_bytes(), b"from-env")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert cosign_key.load_public_key(pub_file.read_bytes()) is not None
    assert cosign_key.public_key_pem(key) == pub_file.read_bytes()


def test_keygen_refuses_to_overwrite_and_needs_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(cosign_key.PASSWORD_ENV, raising=False)
    assert main(["image", "keygen", str(tmp_path / "k")]) == 2
    assert "no key password" in capsys.readouterr().err
    assert not (tmp_path / "k.key").exists()

    monkeypatch.setenv(cosign_key.PASSWORD_ENV, "")
    assert main(["image", "keygen", str(tmp_path / "k")]) == 0
    before = (tmp_path / "k.key").read_bytes()
    assert main(["image", "keygen", str(tmp_path / "k")]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert (tmp_path / "k.key").read_bytes() == before


def test_password_file_first_line_wins_over_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cosign_key.PASSWORD_ENV, "env")
    pw = tmp_path / "pw"
    pw.write_bytes(b"file-pw\nignored\n")
    assert cosign_key.read_password(str(pw)) == b"file-pw"
    assert cosign_key.read_password(None) == b"env"


def test_dir_signature_form_round_trips() -> None:
    from pycontainers.distribution.sigstore import from_dir_blob, to_dir_blob

    sig = Signature("application/x", b"payload", {"a": "b"}, "x")
    back = from_dir_blob(to_dir_blob(sig), origin="x")
    assert back == sig
