"""A registry client for the OCI distribution spec (``/v2/``), over httpx.AsyncClient.

One ``RegistryClient`` talks to one registry host. It pings ``/v2/`` once to learn the
scheme and the auth challenge, then authenticates every request for the scopes it
needs (``repository:NAME:pull`` and ``push``), caching tokens (see ``auth.py``).

Scheme: HTTPS with certificate checks, except for registries marked insecure
(``insecure=True``, from ``--tls-verify=false`` or registries.conf) and, unless
``insecure=False`` is said explicitly (``--tls-verify=true``), loopback hosts, which
Docker also treats as insecure: HTTPS first (checked against ``ca_bundle`` if one is
given, else unchecked), then plain HTTP when HTTPS fails.

Faults: connection errors, 5xx and 429 (honouring ``Retry-After``) are retried with
capped exponential backoff on idempotent requests. Blob downloads hash while streaming
into a ``BlobWriter`` (which refuses bytes beyond the descriptor's size) and resume
with ``Range`` after an interruption where the registry answers ``206``.

Beyond pulls, the client offers what pushes and signature attachments need: blob HEAD,
monolithic and chunked upload, cross-repository mount, manifest GET/HEAD/PUT, tag list,
and a generic ``request`` for other endpoints (e.g. referrers).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from httpcore._async.http11 import AsyncHTTP11Connection

from pycontainers.distribution.auth import Authenticator
from pycontainers.distribution.authfile import Credentials
from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import (
    ContentError,
    DigestMismatch,
    DistributionError,
    Forbidden,
    InsecureRegistry,
    ManifestError,
    NotFound,
    RateLimited,
    RegistryError,
    RegistryServerError,
    RegistryUnreachable,
    SizeMismatch,
    Unauthorized,
)
from pycontainers.distribution.manifest import MANIFEST_ACCEPT, Descriptor
from pycontainers.distribution.registries_conf import is_loopback
from pycontainers.distribution.store import BlobWriter

# httpcore reads at most 64 KiB per receive; layer downloads spend most of their Python
# time per chunk, and 1 MiB reads made pulls ~15% faster (bench/distribution/pull_bench.py).
# A class attribute of httpcore's HTTP/1.1 connection, so set it where it exists.
_READ_SIZE = 1 << 20
if getattr(AsyncHTTP11Connection, "READ_NUM_BYTES", _READ_SIZE) < _READ_SIZE:
    AsyncHTTP11Connection.READ_NUM_BYTES = _READ_SIZE

MAX_MANIFEST_SIZE = 4 << 20  # containers/image's limit: manifests are small documents
DEFAULT_CHUNK = 1 << 20
USER_AGENT = "pycontainers"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient failures (connection, 5xx, 429)."""

    attempts: int = 5  # waits 0.25 + 0.5 + 1 + 2 s between them: a restart, not an outage
    base_delay: float = 0.25
    max_delay: float = 4.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)


@dataclass
class ClientOptions:
    """Per-registry connection settings."""

    insecure: bool | None = None  # None: insecure only for loopback hosts
    ca_bundle: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 60.0
    chunk_size: int | None = None  # None: monolithic uploads
    transport: httpx.AsyncBaseTransport | None = None  # tests inject faults here
    event_hooks: dict[str, list[Callable[..., Any]]] | None = None


@dataclass(frozen=True)
class RawManifest:
    """A manifest as received: exact bytes, the media type the registry declared, digest."""

    raw: bytes
    media_type: str
    digest: Digest


class _Truncated(Exception):
    """The body ended before the descriptor's size; resumable."""


def _registry_message(resp: httpx.Response) -> str:
    """The ``errors[].message`` of a registry error body, else the reason phrase."""
    try:
        doc = json.loads(resp.content)
        errors = doc.get("errors") or []
        parts = []
        for e in errors:
            code = str(e.get("code", "")).lower().replace("_", " ")
            msg = str(e.get("message", "")).strip()
            if code and msg and msg.lower() != code:
                parts.append(f"{code}: {msg}")
            else:
                parts.append(msg or code)
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError, TypeError, httpx.ResponseNotRead):
        pass
    return resp.reason_phrase.lower() or f"status {resp.status_code}"


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else None


def _unless_same(detail: str, kind: str) -> str:
    """`` (detail)``, without a leading ``kind:`` that would say the same thing twice."""
    detail = detail.removeprefix(f"{kind}: ").strip()
    return "" if not detail or detail == kind else f" ({detail})"


def error_for(resp: httpx.Response, what: str) -> RegistryError:
    """Map an error status to the family, naming ``what`` (image, blob) and the cause."""
    status = resp.status_code
    try:
        detail = _registry_message(resp)
    except httpx.ResponseNotRead:
        detail = resp.reason_phrase.lower()
    if status == 404:
        return NotFound(f"{what}: not found{_unless_same(detail, 'not found')}", status=status)
    if status == 401:
        return Unauthorized(
            f"{what}: unauthorized{_unless_same(detail, 'unauthorized')}", status=status
        )
    if status == 403:
        return Forbidden(f"{what}: forbidden{_unless_same(detail, 'forbidden')}", status=status)
    if status == 429:
        return RateLimited(
            f"{what}: rate limited by the registry ({detail})",
            status=status,
            retry_after=_retry_after(resp),
        )
    if status >= 500:
        return RegistryServerError(f"{what}: registry error {status} ({detail})", status=status)
    return RegistryError(f"{what}: registry answered {status} ({detail})", status=status)


class RegistryClient:
    """Talks to one registry; use ``async with`` (or ``aclose``) to release connections."""

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials | None = None,
        options: ClientOptions | None = None,
    ) -> None:
        self.host = host
        self.options = options or ClientOptions()
        self.auth = Authenticator(host, credentials)
        self._scheme: str | None = None
        verify: ssl.SSLContext | str | bool = True
        if self.options.ca_bundle and not self.options.insecure:
            verify = ssl.create_default_context(cafile=self.options.ca_bundle)
        elif self._may_use_http():
            verify = False
        self.http = httpx.AsyncClient(
            verify=verify,
            timeout=httpx.Timeout(self.options.timeout, connect=10.0),
            transport=self.options.transport,
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            event_hooks=self.options.event_hooks,
        )
        self._ping_lock = asyncio.Lock()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    # ---- connection and auth ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._scheme is not None, "ping first"
        return f"{self._scheme}://{self.host}"

    def _may_use_http(self) -> bool:
        if self.options.insecure is None:
            return is_loopback(self.host)
        return self.options.insecure

    async def ping(self) -> None:
        """GET /v2/: choose the scheme and learn the auth challenge (once per client)."""
        async with self._ping_lock:
            if self._scheme is not None:
                return
            schemes = ["https", "http"] if self._may_use_http() else ["https"]
            last: Exception | None = None
            for scheme in schemes:
                url = f"{scheme}://{self.host}/v2/"
                try:
                    if scheme == "https" and len(schemes) > 1:
                        # One try only: a plain-http registry fails the TLS handshake at
                        # once, and retrying that would only delay the fallback.
                        resp = await self.http.get(url)
                    else:
                        resp = await self._retrying(
                            lambda url=url: self.http.get(url),  # type: ignore[misc]
                            what=f"registry {self.host}",
                        )
                except (RegistryUnreachable, httpx.TransportError) as exc:
                    last = exc
                    continue
                if resp.status_code == 401:
                    self.auth.learn(resp)
                elif resp.status_code == 404:
                    raise NotFound(
                        f"{self.host}: no registry API at {scheme}://{self.host}/v2/",
                        status=404,
                    )
                elif resp.status_code >= 400:
                    raise error_for(resp, f"registry {self.host}")
                self._scheme = scheme
                return
            assert last is not None
            if not self._may_use_http() and _is_tls_failure(last):
                raise InsecureRegistry(
                    f"registry {self.host}: https failed ({_root_cause(last)}); "
                    "plain http is only used for registries marked insecure"
                ) from last
            raise last

    async def _retrying(
        self, send: Callable[[], Any], *, what: str, retry: bool = True
    ) -> httpx.Response:
        """Run ``send``, retrying connection errors, 5xx and 429 if ``retry``.

        Upload steps pass ``retry=False``: repeating one PATCH of a chunked upload
        could append twice, so the upload is restarted as a whole by its caller.
        """
        policy = self.options.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                resp: httpx.Response = await send()
            except httpx.TransportError as exc:
                if not retry or attempt >= policy.attempts or _is_tls_failure(exc):
                    raise RegistryUnreachable(f"{what}: {_describe(exc)}") from exc
                await asyncio.sleep(policy.delay(attempt))
                continue
            if retry and (resp.status_code >= 500 or resp.status_code == 429):
                if attempt >= policy.attempts:
                    return resp
                await asyncio.sleep(policy.delay(attempt, _retry_after(resp)))
                continue
            return resp

    async def request(
        self,
        method: str,
        path: str,
        *,
        scopes: Sequence[str],
        what: str,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        idempotent: bool = True,
        url: str | None = None,
    ) -> httpx.Response:
        """An authenticated request to ``/v2/...`` (body read), retried if idempotent.

        Returns any response with a status below 400 (and 404 for HEAD); raises the
        mapped ``RegistryError`` otherwise.
        """
        await self.ping()
        target = url or f"{self.base_url}{path}"
        for attempt in (1, 2):
            auth = await self.auth.header(self.http, scopes)

            async def send(auth: dict[str, str] = auth) -> httpx.Response:
                return await self.http.request(
                    method,
                    target,
                    headers={**(headers or {}), **auth},
                    content=content,
                    params=params,
                )

            resp = await self._retrying(send, what=what, retry=idempotent)
            if resp.status_code == 401 and attempt == 1 and self.auth.learn(resp):
                self.auth.forget(scopes)
                continue
            break
        if resp.status_code >= 400 and not (method == "HEAD" and resp.status_code == 404):
            raise error_for(resp, what)
        return resp

    async def check_credentials(self) -> None:
        """Prove the credentials work (``login``): ``/v2/`` must answer with them."""
        await self.request("GET", "/v2/", scopes=[], what=f"login to {self.host}")

    @asynccontextmanager
    async def _stream(
        self, path: str, *, scopes: Sequence[str], what: str, headers: dict[str, str]
    ) -> AsyncIterator[httpx.Response]:
        """A streamed GET (one attempt; the caller retries and resumes)."""
        await self.ping()
        for attempt in (1, 2):
            auth = await self.auth.header(self.http, scopes)
            req = self.http.build_request(
                "GET", f"{self.base_url}{path}", headers={**headers, **auth}
            )
            resp = await self.http.send(req, stream=True)
            if resp.status_code == 401 and attempt == 1 and self.auth.learn(resp):
                await resp.aclose()
                self.auth.forget(scopes)
                continue
            break
        try:
            if resp.status_code >= 400:
                await resp.aread()
                raise error_for(resp, what)
            yield resp
        finally:
            await resp.aclose()

    # ---- manifests -------------------------------------------------------------------

    @staticmethod
    def pull_scope(repo: str) -> list[str]:
        return [f"repository:{repo}:pull"]

    @staticmethod
    def push_scope(repo: str) -> list[str]:
        return [f"repository:{repo}:pull,push"]

    async def get_manifest(
        self, repo: str, reference: str, *, accept: str = MANIFEST_ACCEPT, what: str = ""
    ) -> RawManifest:
        """GET a manifest by tag or digest; the bytes are checked against the digest."""
        label = what or f"{self.host}/{repo}:{reference}"
        raw, headers = await self._get_limited(
            f"/v2/{repo}/manifests/{reference}",
            scopes=self.pull_scope(repo),
            what=label,
            headers={"Accept": accept},
            limit=MAX_MANIFEST_SIZE,
            too_big=lambda: ManifestError(
                f"{label}: manifest larger than {MAX_MANIFEST_SIZE} bytes"
            ),
        )
        digest = Digest.of_bytes(raw)
        if reference.startswith("sha") and ":" in reference:
            expected = Digest.parse(reference)
            if Digest.of_bytes(raw, expected.algorithm) != expected:
                raise DigestMismatch(f"{label}: manifest digest mismatch: registry sent {digest}")
            digest = expected
        else:
            header = headers.get("Docker-Content-Digest", "")
            if header.startswith("sha256:") and header != str(digest):
                raise DigestMismatch(
                    f"{label}: manifest bytes hash to {digest}, the registry says {header}"
                )
        media_type = headers.get("Content-Type", "").split(";")[0].strip()
        return RawManifest(raw, media_type, digest)

    async def _get_limited(
        self,
        path: str,
        *,
        scopes: Sequence[str],
        what: str,
        headers: dict[str, str],
        limit: int,
        too_big: Callable[[], DistributionError],
    ) -> tuple[bytes, httpx.Headers]:
        """GET a small document, refusing to hold more than ``limit`` bytes of it.

        Streamed, so a registry that sends an endless body is cut off at ``limit``
        instead of filling memory; retried like ``request``.
        """
        policy = self.options.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._stream(path, scopes=scopes, what=what, headers=headers) as resp:
                    if int(resp.headers.get("Content-Length") or 0) > limit:
                        raise too_big()
                    body = bytearray()
                    async for chunk in resp.aiter_bytes():
                        body += chunk
                        if len(body) > limit:
                            raise too_big()
                    return bytes(body), resp.headers
            except (httpx.TransportError, RateLimited, RegistryServerError) as exc:
                if attempt >= policy.attempts or (
                    isinstance(exc, httpx.TransportError) and _is_tls_failure(exc)
                ):
                    raise _unreachable(what, exc) from exc
                retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
                await asyncio.sleep(policy.delay(attempt, retry_after))

    async def head_manifest(
        self, repo: str, reference: str, *, accept: str = MANIFEST_ACCEPT
    ) -> Descriptor | None:
        """The descriptor a tag or digest resolves to, or None if it does not exist."""
        resp = await self.request(
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            scopes=self.pull_scope(repo),
            what=f"{self.host}/{repo}:{reference}",
            headers={"Accept": accept},
        )
        if resp.status_code == 404:
            return None
        digest_header = resp.headers.get("Docker-Content-Digest")
        if not digest_header:
            return None
        return Descriptor(
            resp.headers.get("Content-Type", "").split(";")[0].strip(),
            Digest.parse(digest_header),
            int(resp.headers.get("Content-Length", "0")),
        )

    async def put_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> Digest:
        """PUT a manifest under a tag or its digest; returns the digest of ``raw``."""
        digest = Digest.of_bytes(raw)
        await self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scopes=self.push_scope(repo),
            what=f"{self.host}/{repo}:{reference}",
            headers={"Content-Type": media_type},
            content=raw,
        )
        return digest

    async def list_tags(self, repo: str) -> list[str]:
        resp = await self.request(
            "GET",
            f"/v2/{repo}/tags/list",
            scopes=self.pull_scope(repo),
            what=f"{self.host}/{repo}",
        )
        tags = resp.json().get("tags") or []
        return [t for t in tags if isinstance(t, str)]

    # ---- blobs -----------------------------------------------------------------------

    async def blob_exists(self, repo: str, digest: Digest) -> bool:
        resp = await self.request(
            "HEAD",
            f"/v2/{repo}/blobs/{digest}",
            scopes=self.pull_scope(repo),
            what=f"{self.host}/{repo}: blob {digest}",
        )
        return resp.status_code == 200

    async def get_blob_bytes(self, repo: str, desc: Descriptor, *, limit: int = 4 << 20) -> bytes:
        """A small blob (config, signature payload) in memory, verified."""
        if desc.size > limit:
            raise SizeMismatch(f"blob {desc.digest}: {desc.size} bytes is over {limit}")
        what = f"{self.host}/{repo}: blob {desc.digest}"
        data, _ = await self._get_limited(
            f"/v2/{repo}/blobs/{desc.digest}",
            scopes=self.pull_scope(repo),
            what=what,
            headers={},
            limit=desc.size,
            too_big=lambda: SizeMismatch(f"{what}: more data than the descriptor's size"),
        )
        if len(data) != desc.size:
            raise SizeMismatch(
                f"{self.host}/{repo}: blob {desc.digest}: expected {desc.size} bytes, "
                f"got {len(data)}"
            )
        desc.digest.verify_bytes(data, what=f"{self.host}/{repo}: blob {desc.digest}")
        return data

    async def fetch_blob(
        self,
        repo: str,
        desc: Descriptor,
        writer: BlobWriter,
        *,
        progress: Progress | None = None,
        what: str = "",
    ) -> None:
        """Stream a blob into ``writer`` and commit it; retry and resume on faults.

        Digest and size mismatches are not retried: the registry holds bad content,
        and asking again would only fetch it again.
        """
        label = what or f"{self.host}/{repo}: blob {desc.digest}"
        policy = self.options.retry
        attempt = 0
        while True:
            attempt += 1
            headers = {"Accept-Encoding": "identity"}
            start = writer.offset
            if start:
                headers["Range"] = f"bytes={start}-"
            try:
                async with self._stream(
                    f"/v2/{repo}/blobs/{desc.digest}",
                    scopes=self.pull_scope(repo),
                    what=label,
                    headers=headers,
                ) as resp:
                    if start and not _resumes_at(resp, start):
                        if progress:
                            progress(-start)
                        writer.truncate()
                    async for chunk in resp.aiter_raw():
                        writer.write(chunk)
                        if progress:
                            progress(len(chunk))
                if writer.offset < desc.size:
                    raise _Truncated()
                await asyncio.to_thread(writer.commit)  # drains the writer thread, fsyncs
                return
            except ContentError:
                raise
            except (httpx.TransportError, _Truncated, RateLimited, RegistryServerError) as exc:
                if attempt >= policy.attempts:
                    raise _unreachable(label, exc) from exc
                retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
                await asyncio.sleep(policy.delay(attempt, retry_after))

    async def mount_blob(self, repo: str, digest: Digest, from_repo: str) -> bool:
        """Cross-repository mount of ``digest`` from ``from_repo``; False if refused.

        A registry that cannot mount starts an ordinary upload instead (202); that
        session is cancelled so no stale upload is left behind.
        """
        what = f"{self.host}/{repo}: blob {digest}"
        try:
            resp = await self.request(
                "POST",
                f"/v2/{repo}/blobs/uploads/",
                scopes=[*self.push_scope(repo), f"repository:{from_repo}:pull"],
                what=what,
                params={"mount": str(digest), "from": from_repo},
                idempotent=False,
            )
        except (Unauthorized, Forbidden, NotFound):
            return False
        if resp.status_code == 201:
            return True
        if resp.headers.get("Location"):
            with contextlib.suppress(RegistryError):
                await self.request(
                    "DELETE",
                    "",
                    url=self._location(resp, what),
                    scopes=self.push_scope(repo),
                    what=what,
                    idempotent=False,
                )
        return False

    async def push_blob(
        self,
        repo: str,
        desc: Descriptor,
        path: Path,
        *,
        progress: Progress | None = None,
    ) -> str:
        """Upload a local file as a blob unless present; "exists" or "uploaded".

        Monolithic (POST, then one PUT with the body) unless ``chunk_size`` is set, then
        chunked (PATCH per chunk with Content-Range, then PUT with the digest).
        """
        if await self.blob_exists(repo, desc.digest):
            return "exists"
        what = f"{self.host}/{repo}: blob {desc.digest}"
        scopes = self.push_scope(repo)
        policy = self.options.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                start = await self.request(
                    "POST",
                    f"/v2/{repo}/blobs/uploads/",
                    scopes=scopes,
                    what=what,
                    idempotent=False,
                )
                location = self._location(start, what)
                if self.options.chunk_size:
                    await self._upload_chunked(location, desc, path, scopes, what, progress)
                else:
                    await self._upload_monolithic(location, desc, path, scopes, what, progress)
                return "uploaded"
            except (RegistryUnreachable, RegistryServerError, RateLimited) as exc:
                if attempt >= policy.attempts:
                    raise
                retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
                await asyncio.sleep(policy.delay(attempt, retry_after))

    def _location(self, resp: httpx.Response, what: str) -> str:
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"{what}: upload answer has no Location", status=resp.status_code)
        return str(resp.url.join(location))

    async def _upload_monolithic(
        self,
        location: str,
        desc: Descriptor,
        path: Path,
        scopes: Sequence[str],
        what: str,
        progress: Progress | None,
    ) -> None:
        data = await asyncio.to_thread(path.read_bytes)
        if len(data) != desc.size:
            raise SizeMismatch(f"{what}: {path} has {len(data)} bytes, want {desc.size}")
        url = httpx.URL(location).copy_merge_params({"digest": str(desc.digest)})
        await self.request(
            "PUT",
            "",
            url=str(url),
            scopes=scopes,
            what=what,
            headers={"Content-Type": "application/octet-stream"},
            content=data,
            idempotent=False,
        )
        if progress:
            progress(len(data))

    async def _upload_chunked(
        self,
        location: str,
        desc: Descriptor,
        path: Path,
        scopes: Sequence[str],
        what: str,
        progress: Progress | None,
    ) -> None:
        chunk_size = self.options.chunk_size or DEFAULT_CHUNK
        offset = 0
        with open(path, "rb") as f:
            while chunk := f.read(chunk_size):
                resp = await self.request(
                    "PATCH",
                    "",
                    url=location,
                    scopes=scopes,
                    what=what,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                    },
                    content=chunk,
                    idempotent=False,
                )
                offset += len(chunk)
                location = self._location(resp, what)
                if progress:
                    progress(len(chunk))
        url = httpx.URL(location).copy_merge_params({"digest": str(desc.digest)})
        await self.request(
            "PUT", "", url=str(url), scopes=scopes, what=what, content=b"", idempotent=False
        )

    async def push_blob_bytes(self, repo: str, data: bytes, media_type: str) -> Descriptor:
        """Upload a small in-memory blob (config, signature payload); returns its descriptor."""
        desc = Descriptor(media_type, Digest.of_bytes(data), len(data))
        if await self.blob_exists(repo, desc.digest):
            return desc
        what = f"{self.host}/{repo}: blob {desc.digest}"
        start = await self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            scopes=self.push_scope(repo),
            what=what,
            idempotent=False,
        )
        url = httpx.URL(self._location(start, what)).copy_merge_params({"digest": str(desc.digest)})
        await self.request(
            "PUT",
            "",
            url=str(url),
            scopes=self.push_scope(repo),
            what=what,
            headers={"Content-Type": "application/octet-stream"},
            content=data,
            idempotent=False,
        )
        return desc


def _resumes_at(resp: httpx.Response, start: int) -> bool:
    """True if a 206 answer continues exactly at ``start``."""
    if resp.status_code != 206:
        return False
    content_range = resp.headers.get("Content-Range", "")
    # "bytes START-END/TOTAL"
    try:
        unit, _, rest = content_range.partition(" ")
        return unit == "bytes" and int(rest.split("-", 1)[0]) == start
    except ValueError:
        return False


def _is_tls_failure(exc: BaseException) -> bool:
    """A failed TLS handshake (bad certificate, not TLS at all) does not heal by retrying."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _root_cause(exc: BaseException) -> str:
    """The innermost error's text: what actually failed, without our own wrapping."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({text})"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({text})"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return f"connection broken ({text})"
    return text


def _unreachable(label: str, exc: BaseException) -> DistributionError:
    if isinstance(exc, RegistryError):
        return exc
    if isinstance(exc, _Truncated):
        return RegistryUnreachable(f"{label}: the registry kept ending the blob early")
    return RegistryUnreachable(f"{label}: {_describe(exc)}")
