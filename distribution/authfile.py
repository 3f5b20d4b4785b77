"""Registry credentials in containers-auth.json(5) and Docker's config.json.

Read order, as containers/image uses it: ``$REGISTRY_AUTH_FILE`` if set (only that
file), else ``$XDG_RUNTIME_DIR/containers/auth.json``,
``~/.config/containers/auth.json``, ``~/.docker/config.json``. Keys are a registry
host (``quay.io``), optionally with a repository namespace (``quay.io/team``); the most
specific key that prefixes the repository wins. Docker's ``https://index.docker.io/v1/``
key means docker.io. Entries are ``{"auth": base64("user:password")}``; credential
helpers (``credHelpers``, ``credsStore``) are not run.

``login``/``logout`` write the containers file (``write_path()``), atomically and mode
0600, leaving other keys and fields untouched.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycontainers.distribution.errors import AuthError
from pycontainers.distribution.store import write_file_atomic

_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or identity token) for one registry."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"


def read_paths() -> list[Path]:
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return [Path(os.environ["REGISTRY_AUTH_FILE"])]
    out = []
    if os.environ.get("XDG_RUNTIME_DIR"):
        out.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    home = Path(os.path.expanduser("~"))
    out.append(home / ".config" / "containers" / "auth.json")
    out.append(home / ".docker" / "config.json")
    return out


def write_path() -> Path:
    """Where ``login`` writes: the first containers-auth.json location that applies."""
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return Path(os.environ["REGISTRY_AUTH_FILE"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    return Path(os.path.expanduser("~")) / ".config" / "containers" / "auth.json"


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AuthError(f"{path}: cannot read credentials ({exc.strerror})") from exc
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise AuthError(f"{path}: invalid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise AuthError(f"{path}: not a JSON object")
    return doc


def _normalise_key(key: str) -> str:
    if key in _DOCKER_HUB_KEYS:
        return "docker.io"
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    return key.rstrip("/").removesuffix("/v1").removesuffix("/v2")


def _decode(entry: Any, path: Path, key: str) -> Credentials | None:
    if not isinstance(entry, dict):
        raise AuthError(f"{path}: auths[{key!r}] is not an object")
    if entry.get("identitytoken"):
        return Credentials("<token>", str(entry["identitytoken"]))
    raw = entry.get("auth")
    if not raw:
        return None
    try:
        user, sep, password = base64.b64decode(raw, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthError(f"{path}: auths[{key!r}].auth is not base64 of user:password") from exc
    if not sep:
        raise AuthError(f"{path}: auths[{key!r}].auth is not base64 of user:password")
    return Credentials(user, password)


def lookup(
    registry: str, repository: str = "", paths: list[Path] | None = None
) -> Credentials | None:
    """Credentials for ``registry`` (and ``repository`` in it), or None for anonymous."""
    wanted = f"{registry}/{repository}" if repository else registry
    for path in paths if paths is not None else read_paths():
        auths = _load(path).get("auths") or {}
        if not isinstance(auths, dict):
            raise AuthError(f"{path}: auths is not an object")
        best: tuple[int, str] | None = None
        for key in auths:
            norm = _normalise_key(key)
            if (wanted == norm or wanted.startswith(norm + "/")) and (
                best is None or len(norm) > best[0]
            ):
                best = (len(norm), key)
        if best is not None:
            creds = _decode(auths[best[1]], path, best[1])
            if creds is not None:
                return creds
    return None


def login(registry: str, creds: Credentials, path: Path | None = None) -> Path:
    """Save ``creds`` for ``registry``; return the file written."""
    target = path or write_path()
    doc = _load(target)
    auths = doc.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise AuthError(f"{target}: auths is not an object")
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    auths[registry] = {"auth": token}
    _save(target, doc)
    return target


def logout(registry: str | None, path: Path | None = None) -> bool:
    """Forget ``registry`` (or every registry when None); False if nothing was stored."""
    target = path or write_path()
    doc = _load(target)
    auths = doc.get("auths") or {}
    if registry is None:
        found = bool(auths)
        doc["auths"] = {}
    else:
        keys = [k for k in auths if k == registry or _normalise_key(k) == registry]
        found = bool(keys)
        for k in keys:
            del auths[k]
    if found:
        _save(target, doc)
    return found


def _save(path: Path, doc: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_file_atomic(path, (json.dumps(doc, indent="\t") + "\n").encode(), mode=0o600)
    except OSError as exc:
        raise AuthError(f"{path}: cannot write credentials ({exc.strerror})") from exc
