"""Image references: the Docker/distribution grammar, parsed and normalised.

The grammar, from distribution/reference (reference.go)::

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain '/'] remote-name
    domain           := host [':' port-number]
    host             := domain-name | IPv4address | '[' IPv6address ']'
    domain-name      := domain-component ['.' domain-component]*
    domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    remote-name      := path-component ['/' path-component]*
    path-component   := alpha-numeric [separator alpha-numeric]*
    alpha-numeric    := /[a-z0-9]+/
    separator        := /[_.]|__|[-]*/
    tag              := /[\\w][\\w.-]{0,127}/
    digest           := algorithm ":" hex     (see digest.py)

Normalisation as Docker and containers/image do it: the first component is a domain only
if it contains ``.`` or ``:``, is ``localhost``, or has upper-case letters; otherwise the
domain is ``docker.io`` and a one-component path gets ``library/``. A reference with
neither tag nor digest gets ``:latest``. Names are at most 255 characters.

Whether the input named a registry is kept (``ImageRef.short``), so short names can be
resolved through registries.conf (see ``registries_conf.py``) instead of silently
going to Docker Hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import DigestError, ReferenceError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
NAME_TOTAL_LENGTH_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN_RE = re.compile(rf"^{_HOST}(?::[0-9]+)?$")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|[-]*)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_ANCHORED_ID_RE = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class ImageRef:
    """A normalised image reference: ``domain/path[:tag][@digest]``.

    ``short`` records that the input named no registry (``busybox``), so callers may
    resolve it through registries.conf before using ``domain``.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None
    short: bool = False

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse and normalise ``text``; raise ``ReferenceError`` naming it and the cause."""
        if not isinstance(text, str) or not text:
            raise ReferenceError("invalid reference '': empty")
        if text != text.strip() or any(c.isspace() for c in text):
            raise ReferenceError(f"invalid reference {text!r}: contains white space")
        if "://" in text:
            raise ReferenceError(
                f"invalid reference {text!r}: a transport prefix is not allowed here"
            )
        if _ANCHORED_ID_RE.match(text):
            raise ReferenceError(
                f"invalid reference {text!r}: a 64-character hex string is an image id, "
                "not a repository name"
            )
        rest, digest = text, None
        if "@" in rest:
            rest, _, digest_text = rest.partition("@")
            try:
                digest = Digest.parse(digest_text)
            except DigestError as exc:
                raise ReferenceError(f"invalid reference {text!r}: {exc}") from exc
        name, tag = rest, None
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            name, tag = rest[:colon], rest[colon + 1 :]
            if not _TAG_RE.match(tag):
                raise ReferenceError(
                    f"invalid reference {text!r}: bad tag {tag!r} "
                    "(want letters, digits, '_', '.', '-', at most 128, not starting with . or -)"
                )
        if not name:
            raise ReferenceError(f"invalid reference {text!r}: no repository name")
        if len(name) > NAME_TOTAL_LENGTH_MAX:
            raise ReferenceError(
                f"invalid reference {text!r}: name longer than {NAME_TOTAL_LENGTH_MAX} characters"
            )
        domain, path, short = _split_domain(name)
        if not _DOMAIN_RE.match(domain):
            raise ReferenceError(f"invalid reference {text!r}: bad registry host {domain!r}")
        if path.lower() != path:
            raise ReferenceError(f"invalid reference {text!r}: repository name must be lower case")
        if not _PATH_RE.match(path):
            raise ReferenceError(
                f"invalid reference {text!r}: bad repository name {path!r} "
                "(want lower-case components of letters and digits separated by '.', '_', "
                "'__', '-' and '/')"
            )
        if tag is None and digest is None:
            tag = "latest"
        return cls(domain, path, tag, digest, short)

    @property
    def name(self) -> str:
        """``domain/path`` without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def repository(self) -> str:
        """The repository inside its registry, as the /v2/ API names it."""
        return self.path

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest if pinned, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        assert self.tag is not None
        return self.tag

    @property
    def api_host(self) -> str:
        """The host:port to talk to; Docker Hub's API lives on another host."""
        return DOCKER_HUB_API_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    def pinned(self, digest: Digest) -> ImageRef:
        return replace(self, digest=digest)

    def with_tag(self, tag: str | None) -> ImageRef:
        return replace(self, tag=tag)

    def with_domain(self, domain: str, path: str | None = None) -> ImageRef:
        """The same tag/digest in another registry (short-name resolution)."""
        new_path = path if path is not None else self.path
        if domain == DEFAULT_DOMAIN and "/" not in new_path:
            new_path = OFFICIAL_REPO_PREFIX + new_path
        return replace(self, domain=domain, path=new_path, short=False)

    def __str__(self) -> str:
        return self.name + self._suffix()

    def _suffix(self) -> str:
        """``:tag``, ``@digest`` or both."""
        out = ""
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + str(self.digest)
        return out

    def familiar(self) -> str:
        """The short form Docker prints (``busybox:latest``), for humans only."""
        path = self.path
        if self.domain == DEFAULT_DOMAIN:
            if path.startswith(OFFICIAL_REPO_PREFIX) and path.count("/") == 1:
                path = path[len(OFFICIAL_REPO_PREFIX) :]
            out = path
        else:
            out = self.name
        return out + self._suffix()


def _split_domain(name: str) -> tuple[str, str, bool]:
    first, sep, remainder = name.partition("/")
    is_domain = bool(sep) and (
        "." in first or ":" in first or first == "localhost" or first.lower() != first
    )
    if not is_domain:
        domain, path, short = DEFAULT_DOMAIN, name, True
    else:
        domain, path, short = first, remainder, False
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    return domain, path, short
