"""TLS: a docker-registry serving HTTPS with a certificate our test makes.

Verified HTTPS with ``--ca-bundle``; a refused certificate is a clear error (not retried,
never downgraded to http when TLS is required); loopback registries are insecure by
default, as Docker treats them.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.images import FixtureImages
from harness.util import free_port
from pycontainers.distribution.docker_transport import ConnectOptions
from pycontainers.distribution.errors import InsecureRegistry
from pycontainers.distribution.pull import pull

from .conftest import Cli

pytestmark = pytest.mark.registry


def _self_signed(workdir: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyc tls test registry")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "cert.pem", workdir / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsRegistry:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.cert, key = _self_signed(workdir)
        conf = workdir / "config.yml"
        conf.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
            f"http:\n  addr: {self.host}\n  tls:\n    certificate: {self.cert}\n    key: {key}\n"
        )
        self.log = open(workdir / "registry.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(conf)], stdout=self.log, stderr=self.log
        )
        ctx = ssl.create_default_context(cafile=str(self.cert))
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"https://{self.host}/v2/", timeout=1, context=ctx)
                return
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("TLS registry did not start") from None
                time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRegistry]:
    reg = TlsRegistry(tmp_path_factory.mktemp("tls-registry"))
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="module")
def tls_image(tls_registry: TlsRegistry, images: FixtureImages) -> str:
    ref = f"{tls_registry.host}/tls/busybox:latest"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "-q",
            "--dest-tls-verify=false",
            images.ref("busybox"),
            f"docker://{ref}",
        ],
        check=True,
    )
    return ref


def test_verified_https_with_ca_bundle(
    tls_registry: TlsRegistry, tls_image: str, store_root: Path, connect: ConnectOptions
) -> None:
    connect.tls_verify = True
    connect.ca_bundle = str(tls_registry.cert)
    seen: list[str] = []

    async def record(request: object) -> None:
        seen.append(str(getattr(request, "url", "")))

    connect.event_hooks = {"request": [record]}
    result = asyncio.run(pull(tls_image, store_root, connect))
    assert result.copy.fetched
    assert seen and all(url.startswith("https://") for url in seen)


def test_unknown_certificate_is_refused_when_tls_is_required(
    tls_image: str, store_root: Path, connect: ConnectOptions
) -> None:
    connect.tls_verify = True
    with pytest.raises(InsecureRegistry) as info:
        asyncio.run(pull(tls_image, store_root, connect))
    message = str(info.value)
    assert "certificate" in message.lower() and tls_image.split("/")[0] in message
    assert not store_root.exists() or not any((store_root / "blobs" / "sha256").iterdir())


def test_loopback_default_accepts_unverified_https(
    tls_image: str, store_root: Path, connect: ConnectOptions
) -> None:
    assert connect.tls_verify is None
    assert asyncio.run(pull(tls_image, store_root, connect)).copy.fetched


def test_command_line_tls_flags(tls_registry: TlsRegistry, tls_image: str, run_cli: Cli) -> None:
    refused = run_cli("image", "inspect", "--tls-verify=true", f"docker://{tls_image}")
    assert refused.returncode == 1 and "certificate" in refused.stderr.lower()
    ok = run_cli(
        "image",
        "inspect",
        "--tls-verify=true",
        "--ca-bundle",
        str(tls_registry.cert),
        f"docker://{tls_image}",
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["Architecture"] == "amd64"
