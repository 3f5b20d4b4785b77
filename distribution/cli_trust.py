"""``pycontainers image`` subcommands: keygen, sign, verify.

Exit status: 0 on success (``verify``: only when the policy accepts the image), 1 when
the policy rejects, 2 when the command could not run (bad policy, unreadable source or
key, registry error).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pycontainers.distribution import cosign_key
from pycontainers.distribution.errors import DistributionError
from pycontainers.distribution.policy import evaluate, load_policy
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.trust import dir_image

EXIT_REJECTED = 1
EXIT_ERROR = 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add keygen, sign and verify to the ``image`` group."""
    keygen = sub.add_parser(
        "keygen",
        help="create a cosign-compatible key pair (PREFIX.key, PREFIX.pub)",
        description="Write PREFIX.key (encrypted, cosign's format) and PREFIX.pub (PEM). "
        f"The password comes from --password-file or ${cosign_key.PASSWORD_ENV}.",
    )
    keygen.add_argument("prefix", metavar="PREFIX")
    keygen.add_argument("--password-file", metavar="FILE")
    keygen.add_argument("--algorithm", choices=cosign_key.ALGORITHMS, default="ecdsa-p256")
    keygen.add_argument("--force", action="store_true", help="overwrite existing files")
    keygen.set_defaults(func=cmd_keygen)

    verify = sub.add_parser(
        "verify",
        help="check an image against the trust policy",
        description="Check SRC (docker://REF, a bare reference, or dir:PATH) against the "
        "policy (--policy) and print the verdict and why; exit 0 only if accepted.",
    )
    verify.add_argument("source", metavar="SRC")
    verify.add_argument(
        "--reference",
        metavar="REF",
        help="judge SRC as if it were the docker image REF (its scopes and identity)",
    )
    verify.add_argument("--tls-verify", default="true", choices=["true", "false"])
    verify.set_defaults(func=cmd_verify)


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return EXIT_ERROR


def cmd_keygen(args: argparse.Namespace) -> int:
    key_path, pub_path = Path(f"{args.prefix}.key"), Path(f"{args.prefix}.pub")
    try:
        for path in (key_path, pub_path):
            if path.exists() and not args.force:
                return _error(f"{path} exists; pass --force to overwrite it")
        password = cosign_key.read_password(args.password_file)
        key = cosign_key.generate(args.algorithm)
        _write(key_path, cosign_key.encrypt_private_key(key, password), 0o600)
        _write(pub_path, cosign_key.public_key_pem(key), 0o644)
    except DistributionError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{exc.filename}: {exc.strerror}")
    print(f"private key written to {key_path}\npublic key written to {pub_path}")
    return 0


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.policy)
        as_ref = ImageRef.parse(args.reference) if args.reference else None
        source: str = args.source
        if source.startswith("dir:"):
            image = dir_image(Path(source[len("dir:") :]), as_ref)
        else:
            return _error(f"{source}: unsupported source (want dir:PATH)")
        verdict = evaluate(policy, image)
    except DistributionError as exc:
        return _error(str(exc))
    print(verdict.explain())
    return 0 if verdict.accepted else EXIT_REJECTED
