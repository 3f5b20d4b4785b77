"""``pycontainers image`` subcommands: keygen, sign, verify.

Exit status: 0 on success (``verify``: only when the policy accepts the image), 1 when
the policy rejects, 2 when the command could not run (bad policy, unreadable source or
key, registry error).

This module only declares the options; the commands live in ``trust_commands`` and are
imported when one of them runs, so other commands start without loading them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

# Mirrors cosign_key.PASSWORD_ENV and cosign_key.ALGORITHMS (tests check they agree).
PASSWORD_ENV = "PYCONTAINERS_KEY_PASSWORD"
ALGORITHMS = ("ecdsa-p256", "ed25519", "rsa-3072")


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from pycontainers.distribution import trust_commands

        command: Callable[[argparse.Namespace], int] = getattr(trust_commands, name)
        return command(args)

    return run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add keygen, sign and verify to the ``image`` group."""
    keygen = sub.add_parser(
        "keygen",
        help="create a cosign-compatible key pair (PREFIX.key, PREFIX.pub)",
        description="Write PREFIX.key (encrypted, cosign's format) and PREFIX.pub (PEM). "
        f"The password comes from --password-file or ${PASSWORD_ENV}.",
    )
    keygen.add_argument("prefix", metavar="PREFIX")
    keygen.add_argument("--password-file", metavar="FILE")
    keygen.add_argument("--algorithm", choices=ALGORITHMS, default="ecdsa-p256")
    keygen.add_argument("--force", action="store_true", help="overwrite existing files")
    keygen.set_defaults(func=_lazy("cmd_keygen"))

    verify = sub.add_parser(
        "verify",
        help="check an image against the trust policy",
        description="Check SRC (docker://REF or a bare REF, both read from the registry "
        "with their signatures, a skopeo dir:PATH, or an oci:DIR[:NAME] layout, judged by "
        "its path) against the policy (--policy) and print the verdict and why; exit 0 "
        "only if accepted.",
    )
    verify.add_argument("source", metavar="SRC")
    verify.add_argument(
        "--reference",
        metavar="REF",
        help="judge SRC as if it were the docker image REF (its scopes and identity)",
    )
    _connect_args(verify)
    verify.set_defaults(func=_lazy("cmd_verify"))

    sign = sub.add_parser(
        "sign",
        help="sign an image in a registry and push the signature (cosign-compatible)",
        description="Sign the manifest the registry serves for REF with KEY (a cosign "
        "encrypted private key) and push it to the sha256-<hex>.sig attachment. The key "
        f"password comes from --password-file or ${PASSWORD_ENV}.",
    )
    sign.add_argument("reference", metavar="REF")
    sign.add_argument("--key", required=True, metavar="KEY")
    sign.add_argument("--password-file", metavar="FILE")
    sign.add_argument(
        "--sign-identity",
        metavar="REF",
        help="the docker-reference to sign (default: REF with its tag)",
    )
    _connect_args(sign)
    sign.set_defaults(func=_lazy("cmd_sign"))


def _connect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tls-verify",
        choices=["true", "false"],
        help="require HTTPS and verify certificates (default: true unless registries.conf "
        "marks the registry insecure; loopback registries may use HTTP)",
    )
    p.add_argument("--authfile", type=Path, help="credentials file (containers-auth.json)")
    p.add_argument("--creds", help="USER:PASSWORD for the registry")
