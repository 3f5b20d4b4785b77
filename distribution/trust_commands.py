"""The ``image keygen``, ``image verify`` and ``image sign`` commands (options in ``cli_trust``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from pycontainers.distribution import cosign_key
from pycontainers.distribution.authfile import Credentials
from pycontainers.distribution.docker_transport import ConnectOptions, open_client
from pycontainers.distribution.errors import DistributionError
from pycontainers.distribution.layout_transport import oci_source
from pycontainers.distribution.policy import Policy, load_policy, parse_docker_reference
from pycontainers.distribution.policy_eval import ImageRejected, Verdict, evaluate
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.registries_conf import RegistriesConf
from pycontainers.distribution.signing import SignResult, sign_image
from pycontainers.distribution.transports import OciName, parse_transport_name
from pycontainers.distribution.trust import PolicyTrustCheck, dir_image, local_image

EXIT_REJECTED = 1
EXIT_ERROR = 2


def _connect(args: argparse.Namespace) -> ConnectOptions:
    creds = None
    if args.creds:
        user, _, password = args.creds.partition(":")
        creds = Credentials(user, password)
    return ConnectOptions(
        tls_verify=None if args.tls_verify is None else args.tls_verify == "true",
        credentials=creds,
        authfile=args.authfile,
        registries=RegistriesConf.load(),
    )


def _error(msg: str | DistributionError) -> int:
    text = msg.diagnostics() if isinstance(msg, DistributionError) else msg
    print(f"error: {text}", file=sys.stderr)
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
        return _error(exc)
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
            verdict = evaluate(policy, dir_image(Path(source[len("dir:") :]), as_ref))
        elif source.startswith("oci:"):
            verdict = asyncio.run(_verify_layout(policy, source))
        else:
            ref = _docker_ref(source)
            verdict = asyncio.run(_verify_remote(policy, ref, as_ref, _connect(args)))
    except DistributionError as exc:
        return _error(exc)
    print(verdict.explain())
    return 0 if verdict.accepted else EXIT_REJECTED


async def _verify_layout(policy: Policy, source: str) -> Verdict:
    """An ``oci:`` layout judged by its path scopes (a layout keeps no signatures)."""
    name = parse_transport_name(source)
    assert isinstance(name, OciName)
    src = oci_source(name)
    try:
        top = await src.get_manifest()
    finally:
        await src.aclose()
    return evaluate(policy, local_image(name, top.raw))


def _docker_ref(text: str) -> ImageRef:
    if text.startswith("docker://"):
        text = text[len("docker://") :]
    elif "://" in text:
        raise DistributionError(
            f"{text}: unsupported transport (want docker://REF, dir:PATH or oci:DIR[:NAME])"
        )
    return ImageRef.parse(text)


async def _verify_remote(
    policy: Policy, ref: ImageRef, as_ref: ImageRef | None, connect: ConnectOptions
) -> Verdict:
    async with open_client(ref, connect) as client:
        served = await client.get_manifest(ref.repository, ref.reference)
        check = PolicyTrustCheck(policy)
        try:
            return await check.check(
                as_ref or ref, served.raw, served.digest, client, source_repo=ref.repository
            )
        except ImageRejected as exc:
            return exc.verdict


def cmd_sign(args: argparse.Namespace) -> int:
    try:
        ref = _docker_ref(args.reference)
        password = cosign_key.read_password(args.password_file)
        try:
            pem = Path(args.key).read_bytes()
        except OSError as exc:
            return _error(f"key {args.key}: {exc.strerror}")
        key = cosign_key.decrypt_private_key(pem, password, source=f"key {args.key}")
        identity = None
        if args.sign_identity:
            identity = str(parse_docker_reference(args.sign_identity))
        result = asyncio.run(_sign(ref, key, identity, _connect(args)))
    except DistributionError as exc:
        return _error(exc)
    what = "signed" if result.added else "already signed (same signature)"
    print(
        f"{what}: {ref} ({result.manifest_digest}) as {result.signed_identity}\n"
        f"signature: {result.attachment}@{result.attachment_digest}"
    )
    return 0


async def _sign(
    ref: ImageRef, key: cosign_key.PrivateKey, identity: str | None, connect: ConnectOptions
) -> SignResult:
    async with open_client(ref, connect) as client:
        return await sign_image(client, ref, key, identity=identity)
