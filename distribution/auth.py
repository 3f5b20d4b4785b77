"""Registry authentication: WWW-Authenticate challenges, Basic, and Bearer tokens.

The distribution spec's token flow (docker/distribution docs/spec/auth/token.md): a
request without credentials gets ``401`` with ``WWW-Authenticate: Bearer realm=...,
service=...,scope=...``; the client asks the realm for a token for that service and
scope (with Basic credentials if it has any, anonymously otherwise) and repeats the
request with ``Authorization: Bearer TOKEN``. Tokens are cached per scope set until
``expires_in`` (minimum 60 s, as the spec says) runs out, less a safety margin.
A ``Basic`` challenge means sending the credentials with every request.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from pycontainers.distribution.authfile import Credentials
from pycontainers.distribution.errors import AuthError, RegistryUnreachable, Unauthorized

MIN_TOKEN_LIFETIME = 60.0
EXPIRY_MARGIN = 10.0


@dataclass(frozen=True)
class Challenge:
    """One challenge from WWW-Authenticate: scheme (lower case) and its parameters."""

    scheme: str
    params: Mapping[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """Parse RFC 7235 challenges: ``Scheme k=v, k="quoted", Scheme2 k=v``."""
    out: list[Challenge] = []
    i, n = 0, len(header)
    current: tuple[str, dict[str, str]] | None = None
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        start = i
        while i < n and header[i] not in " \t,=":
            i += 1
        token = header[start:i]
        if not token:
            break
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and current is not None:
            i = j + 1
            while i < n and header[i] in " \t":
                i += 1
            if i < n and header[i] == '"':
                i += 1
                value = []
                while i < n and header[i] != '"':
                    if header[i] == "\\" and i + 1 < n:
                        i += 1
                    value.append(header[i])
                    i += 1
                i += 1
                current[1][token.lower()] = "".join(value)
            else:
                vstart = i
                while i < n and header[i] not in " \t,":
                    i += 1
                current[1][token.lower()] = header[vstart:i]
        else:
            if current is not None:
                out.append(Challenge(current[0], current[1]))
            current = (token.lower(), {})
    if current is not None:
        out.append(Challenge(current[0], current[1]))
    return out


class Authenticator:
    """Turns a registry's challenge plus our credentials into Authorization headers.

    One per registry host; it remembers the challenge (from the ping or the first 401)
    and caches bearer tokens per (realm, service, scopes).
    """

    def __init__(
        self,
        host: str,
        credentials: Credentials | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.credentials = credentials
        self.challenge: Challenge | None = None
        self._tokens: dict[tuple[str, str, tuple[str, ...]], tuple[str, float]] = {}
        self._clock = clock
        self.tokens_fetched = 0

    def learn(self, response: httpx.Response) -> bool:
        """Record the challenge of a 401; False if it offers nothing we can answer."""
        header = response.headers.get("WWW-Authenticate", "")
        for ch in parse_challenges(header):
            if ch.scheme == "bearer" and ch.params.get("realm"):
                self.challenge = ch
                return True
            if ch.scheme == "basic":
                self.challenge = ch
                return True
        return False

    def _basic(self) -> str:
        assert self.credentials is not None
        raw = f"{self.credentials.username}:{self.credentials.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def cached_header(self, scopes: Sequence[str]) -> dict[str, str] | None:
        """The header to send without network I/O, or None if a token must be fetched."""
        ch = self.challenge
        if ch is None:
            return {}
        if ch.scheme == "basic":
            return {"Authorization": self._basic()} if self.credentials else {}
        key = self._key(scopes)
        hit = self._tokens.get(key)
        if hit is not None and hit[1] > self._clock():
            return {"Authorization": f"Bearer {hit[0]}"}
        return None

    def _key(self, scopes: Sequence[str]) -> tuple[str, str, tuple[str, ...]]:
        assert self.challenge is not None
        p = self.challenge.params
        return (p.get("realm", ""), p.get("service", ""), tuple(sorted(scopes)))

    def forget(self, scopes: Sequence[str]) -> None:
        if self.challenge is not None and self.challenge.scheme == "bearer":
            self._tokens.pop(self._key(scopes), None)

    async def header(self, http: httpx.AsyncClient, scopes: Sequence[str]) -> dict[str, str]:
        cached = self.cached_header(scopes)
        if cached is not None:
            return cached
        token, lifetime = await self._fetch_token(http, scopes)
        self._tokens[self._key(scopes)] = (token, self._clock() + lifetime - EXPIRY_MARGIN)
        return {"Authorization": f"Bearer {token}"}

    async def _fetch_token(
        self, http: httpx.AsyncClient, scopes: Sequence[str]
    ) -> tuple[str, float]:
        assert self.challenge is not None
        p = self.challenge.params
        params: list[tuple[str, str | int | float | bool | None]] = []
        if p.get("service"):
            params.append(("service", p["service"]))
        params.extend(("scope", s) for s in scopes)
        headers = {"Authorization": self._basic()} if self.credentials else {}
        try:
            resp = await http.get(p["realm"], params=params, headers=headers)
        except httpx.TransportError as exc:
            raise RegistryUnreachable(
                f"{self.host}: token server {p['realm']} unreachable ({exc})"
            ) from exc
        if resp.status_code in (401, 403):
            raise Unauthorized(
                f"{self.host}: the token server refused the credentials"
                + (f" for {self.credentials.username}" if self.credentials else ""),
                status=resp.status_code,
            )
        if resp.status_code != 200:
            raise AuthError(f"{self.host}: token server answered {resp.status_code}")
        try:
            doc = resp.json()
            token = doc.get("token") or doc.get("access_token")
            lifetime = float(doc.get("expires_in") or MIN_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError) as exc:
            raise AuthError(f"{self.host}: token server sent an invalid answer") from exc
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.host}: token server sent no token")
        self.tokens_fetched += 1
        return token, max(lifetime, MIN_TOKEN_LIFETIME)
