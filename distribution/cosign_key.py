"""Signing keys in cosign's formats: encrypted private keys and PEM public keys.

A private key written here must load in ``cosign sign --key`` and a cosign key must load
here, so the format is cosign's, not ours: a PEM block of type
``ENCRYPTED SIGSTORE PRIVATE KEY`` (older cosign: ``ENCRYPTED COSIGN PRIVATE KEY``) whose
body is go-securesystemslib's ``encrypted`` JSON::

    {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": B64},
     "cipher": {"name": "nacl/secretbox", "nonce": B64},
     "ciphertext": B64}

The plaintext is the PKCS#8 DER of the private key; the secretbox key is
``scrypt(password, salt, N, r, p, 32)``. go-securesystemslib accepts exactly three
scrypt parameter sets (its legacy, standard and OWASP strengths) and refuses others, so
a key file cannot make us spend unbounded memory; we do the same. Public keys are PEM
``PUBLIC KEY`` (SubjectPublicKeyInfo), as ``cosign generate-key-pair`` writes them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from pycontainers.distribution.errors import DistributionError

SIGSTORE_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
PASSWORD_ENV = "PYCONTAINERS_KEY_PASSWORD"

# (N, r, p) as go-securesystemslib names them: legacy (what cosign writes), standard, OWASP.
_SCRYPT_PARAMS = {(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)}
_WRITE_PARAMS = (32768, 8, 1)
_SALT_SIZE = 32
ALGORITHMS = ("ecdsa-p256", "ed25519", "rsa-3072")

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


class SigningKeyError(DistributionError):
    """A key file or password that cannot be read, decrypted or used."""


def generate(algorithm: str = "ecdsa-p256") -> PrivateKey:
    """A new private key; cosign's default is ECDSA P-256."""
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise SigningKeyError(
        f"unknown key algorithm {algorithm!r}: want one of {', '.join(ALGORITHMS)}"
    )


def encrypt_private_key(key: PrivateKey, password: bytes) -> bytes:
    """The PEM file cosign writes for ``key``, encrypted with ``password``."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    n, r, p = _WRITE_PARAMS
    salt = secrets.token_bytes(_SALT_SIZE)
    nonce = secrets.token_bytes(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_derive(password, salt, n, r, p))
    ciphertext = box.encrypt(der, nonce).ciphertext
    body = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": _b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
        "ciphertext": _b64(ciphertext),
    }
    return _pem(SIGSTORE_PEM_TYPE, json.dumps(body, separators=(",", ":")).encode())


def decrypt_private_key(pem: bytes, password: bytes, *, source: str = "key") -> PrivateKey:
    """Load a cosign encrypted private key; errors name ``source`` and the cause."""
    pem_type, body = _unpem(pem, source)
    if pem_type not in (SIGSTORE_PEM_TYPE, COSIGN_PEM_TYPE):
        raise SigningKeyError(
            f"{source}: unsupported pem type {pem_type!r}: want an encrypted cosign key "
            f"({SIGSTORE_PEM_TYPE!r})"
        )
    plaintext = decrypt_securesystemslib(body, password, source=source)
    try:
        key = serialization.load_der_private_key(plaintext, password=None)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"{source}: decrypted key is not pkcs#8: {exc}") from exc
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    ):
        raise SigningKeyError(f"{source}: unsupported private key type {type(key).__name__}")
    return key


def decrypt_securesystemslib(body: bytes, password: bytes, *, source: str = "key") -> bytes:
    """Open go-securesystemslib's ``encrypted`` JSON envelope."""
    try:
        doc = json.loads(body)
        kdf, cipher = _obj(doc, "kdf"), _obj(doc, "cipher")
        params = _obj(kdf, "params")
        if kdf.get("name") != "scrypt":
            raise SigningKeyError(f"{source}: unsupported kdf {kdf.get('name')!r}")
        if cipher.get("name") != "nacl/secretbox":
            raise SigningKeyError(f"{source}: unsupported cipher {cipher.get('name')!r}")
        n, r, p = params.get("N"), params.get("r"), params.get("p")
        salt = base64.b64decode(_str(kdf, "salt"), validate=True)
        nonce = base64.b64decode(_str(cipher, "nonce"), validate=True)
        ciphertext = base64.b64decode(_str(doc, "ciphertext"), validate=True)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise SigningKeyError(f"{source}: not an encrypted key envelope: {exc}") from exc
    if (n, r, p) not in _SCRYPT_PARAMS:
        raise SigningKeyError(f"{source}: unsupported scrypt parameters N={n} r={r} p={p}")
    assert isinstance(n, int) and isinstance(r, int) and isinstance(p, int)
    if len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise SigningKeyError(f"{source}: nonce has {len(nonce)} bytes, want 24")
    box = nacl.secret.SecretBox(_derive(password, salt, n, r, p))
    try:
        return box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError as exc:
        raise SigningKeyError(
            f"{source}: decryption failed: wrong password or corrupt key"
        ) from exc


def public_key_pem(key: PrivateKey | PublicKey) -> bytes:
    pub = key.public_key() if not isinstance(key, PublicKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes, *, source: str = "public key") -> PublicKey:
    """A PEM ``PUBLIC KEY`` of a type sigstore verifies: ECDSA, Ed25519 or RSA."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"{source}: not a pem public key: {exc}") from exc
    if not isinstance(key, PublicKey):
        raise SigningKeyError(
            f"{source}: unsupported public key type {type(key).__name__}: "
            "want ecdsa, ed25519 or rsa"
        )
    return key


def read_password(password_file: str | None, environ: Mapping[str, str] | None = None) -> bytes:
    """The key password from ``--password-file`` (first line) or ``PYCONTAINERS_KEY_PASSWORD``.

    There is no prompt: this runs in pipelines and daemons, where a prompt would hang.
    """
    env = os.environ if environ is None else environ
    if password_file is not None:
        try:
            data = Path(password_file).read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"password file {password_file}: {exc.strerror}") from exc
        return data.split(b"\n", 1)[0].rstrip(b"\r")
    if PASSWORD_ENV in env:
        return env[PASSWORD_ENV].encode()
    raise SigningKeyError(
        f"no key password: pass --password-file FILE or set {PASSWORD_ENV} (may be empty)"
    )


def _derive(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=nacl.secret.SecretBox.KEY_SIZE, n=n, r=r, p=p).derive(password)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pem(pem_type: str, body: bytes) -> bytes:
    text = base64.b64encode(body).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return (
        "\n".join([f"-----BEGIN {pem_type}-----", *lines, f"-----END {pem_type}-----"]) + "\n"
    ).encode()


def _unpem(pem: bytes, source: str) -> tuple[str, bytes]:
    lines = pem.decode("ascii", errors="replace").strip().splitlines()
    if (
        len(lines) < 2
        or not lines[0].startswith("-----BEGIN ")
        or not lines[0].endswith("-----")
        or lines[-1] != lines[0].replace("BEGIN", "END", 1)
    ):
        raise SigningKeyError(f"{source}: not a pem file")
    pem_type = lines[0][len("-----BEGIN ") : -len("-----")]
    body_lines = [ln for ln in lines[1:-1] if ln and ":" not in ln]
    try:
        return pem_type, base64.b64decode("".join(body_lines), validate=True)
    except binascii.Error as exc:
        raise SigningKeyError(f"{source}: pem body is not base64") from exc


def _obj(doc: Any, field: str) -> dict[str, Any]:
    value = doc.get(field) if isinstance(doc, dict) else None
    if not isinstance(value, dict):
        raise ValueError(f"field {field!r} is not an object")
    return value


def _str(doc: dict[str, Any], field: str) -> str:
    value = doc.get(field)
    if not isinstance(value, str):
        raise ValueError(f"field {field!r} is not a string")
    return value
