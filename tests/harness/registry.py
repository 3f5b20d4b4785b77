"""A real registry for tests: Debian's ``docker-registry`` (CNCF distribution 2.8) on loopback.

Three modes: ``plain`` (anonymous), ``basic`` (htpasswd) and ``token`` (the registry's
``auth: token`` mode, with a small token issuer in this process that signs JWTs with a
certificate the harness makes; this is how Docker Hub and most registries authenticate).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from harness.util import free_port

USER = "tester"
PASSWORD = "testpass"
SERVICE = "pyc-test-registry"
ISSUER = "pyc-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Issues registry bearer tokens (JWT, ES256) for ``tester``/``testpass``.

    Anonymous requests get a token for ``pull`` only on repositories under ``public/``;
    wrong credentials get 401. ``issued`` counts tokens so tests can check caching.
    """

    def __init__(self, workdir: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyc test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = workdir / "token-cert.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.expires_in = 60
        self.issued = 0
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                issuer._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlparse(req.path).query)
        auth = req.headers.get("Authorization", "")
        user = ""
        if auth.startswith("Basic "):
            given = base64.b64decode(auth[6:]).decode()
            if given != f"{USER}:{PASSWORD}":
                req.send_response(401)
                req.end_headers()
                return
            user = USER
        access = []
        for scope in query.get("scope", []):
            for one in scope.split(" "):
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                wanted = actions.split(",")
                granted = wanted if user else [a for a in wanted if a == "pull"]
                if not user and not name.startswith("public/"):
                    granted = []
                access.append({"type": kind, "name": name, "actions": granted})
        token = self.make_token(user, access)
        self.issued += 1
        body = json.dumps(
            {"token": token, "access_token": token, "expires_in": self.expires_in}
        ).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def make_token(self, subject: str, access: list[dict[str, Any]]) -> str:
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)  # JWS wants raw r||s, not DER
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


@dataclass
class Registry:
    """One running registry. ``host`` is what goes into image references."""

    mode: str
    workdir: Path
    port: int = field(default_factory=free_port)
    username: str = USER
    password: str = PASSWORD
    token_issuer: TokenIssuer | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def _config(self) -> str:
        conf = f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {self.data_dir}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{self.port}
"""
        if self.mode == "basic":
            htpasswd = self.workdir / "htpasswd"
            out = subprocess.run(
                ["htpasswd", "-Bbn", self.username, self.password],
                check=True,
                capture_output=True,
            ).stdout
            htpasswd.write_bytes(out)
            conf += f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
        elif self.mode == "token":
            assert self.token_issuer is not None
            conf += (
                "auth:\n  token:\n"
                f"    realm: {self.token_issuer.realm}\n"
                f"    service: {SERVICE}\n"
                f"    issuer: {ISSUER}\n"
                f"    rootcertbundle: {self.token_issuer.cert_path}\n"
            )
        return conf

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        if self.mode == "token" and self.token_issuer is None:
            self.token_issuer = TokenIssuer(self.workdir)
        conf = self.workdir / "config.yml"
        conf.write_text(self._config())
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                ["docker-registry", "serve", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 15
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/v2/", timeout=1)
                return
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"docker-registry did not answer on {self.url}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Die abruptly (SIGKILL), as a crashed registry would; ``start()`` brings it back."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self.token_issuer is not None:
            self.token_issuer.close()

    def blob_path(self, digest: str) -> Path:
        """Where the registry keeps a blob's bytes (for tests that corrupt storage)."""
        algo, hexd = digest.split(":", 1)
        return self.data_dir / "docker/registry/v2/blobs" / algo / hexd[:2] / hexd / "data"

    def wipe(self) -> None:
        """Remove every repository and blob (between tests that need an empty registry)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir()
        if self._proc is not None:
            self.restart()  # the in-memory blob descriptor cache would remember old blobs

    def auth_header(self) -> dict[str, str]:
        """HTTP Basic credentials, for tests that talk to a ``basic`` registry directly."""
        raw = f"{self.username}:{self.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def skopeo_env() -> dict[str, str]:
    """An environment in which skopeo reads no user's auth files or registries.conf."""
    env = dict(os.environ)
    env.pop("REGISTRY_AUTH_FILE", None)
    return env
