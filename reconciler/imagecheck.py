"""Syntax check of image references in specs, following distribution/reference's grammar.

The spec layer only needs to reject what can never be pulled and to know whether a
reference pins a digest; resolving, normalising and pulling belong to
``pycontainers.distribution``. The grammar (distribution/reference, reference.go):

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain '/'] remote-name
    domain     := host [ ":" port-number ]
    remote-name:= path-component ['/' path-component]*
    path-component := alpha-numeric [separator alpha-numeric]*
    separator  := /[_.]|__|[-]+/
    tag        := /[\\w][\\w.-]{0,127}/
    digest     := algorithm ":" hex   (sha256: 64 hex, sha512: 128 hex)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}"
_NAME = rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
_REFERENCE = re.compile(rf"^{_NAME}(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
_DIGEST_HEX = {"sha256": 64, "sha512": 128}
_NAME_MAX = 255


class ImageRefSyntaxError(ValueError):
    """Raised inside pydantic validators, which turn it into a located spec error."""


@dataclass(frozen=True)
class CheckedImageRef:
    """The parts of a syntactically valid reference that planning needs."""

    text: str
    domain: str | None
    path: str
    tag: str | None
    digest: str | None


def check_image_ref(text: str) -> CheckedImageRef:
    """Accept a reference the registry client could pull, or explain what is wrong."""
    if not text:
        raise ImageRefSyntaxError("image reference is empty")
    if text != text.strip():
        raise ImageRefSyntaxError(f"image reference {text!r} has surrounding whitespace")
    match = _REFERENCE.match(text)
    if match is None:
        lowered = text.lower()
        if lowered != text and _REFERENCE.match(_lower_name(text)):
            raise ImageRefSyntaxError(
                f"image reference {text!r}: repository name must be lower case"
            )
        raise ImageRefSyntaxError(f"invalid image reference {text!r}")
    domain, path = match.group("domain"), match.group("path")
    # A first component without '.', ':' or 'localhost' is a path, not a registry host
    # (docker.io/library normalisation, as distribution/reference does it).
    if domain is not None and not ("." in domain or ":" in domain or domain == "localhost"):
        path = f"{domain}/{path}"
        domain = None
    if len((f"{domain}/" if domain else "") + path) > _NAME_MAX:
        raise ImageRefSyntaxError(f"image reference {text!r}: name longer than {_NAME_MAX}")
    digest = match.group("digest")
    if digest is not None:
        algorithm, _, hexpart = digest.partition(":")
        want = _DIGEST_HEX.get(algorithm)
        if want is None:
            raise ImageRefSyntaxError(
                f"image reference {text!r}: unsupported digest algorithm {algorithm!r}"
            )
        if len(hexpart) != want or not re.fullmatch(r"[a-f0-9]+", hexpart):
            raise ImageRefSyntaxError(
                f"image reference {text!r}: {algorithm} digest must be {want} lower-case hex"
            )
    return CheckedImageRef(text, domain, path, match.group("tag"), digest)


def _lower_name(text: str) -> str:
    name, sep, rest = text.partition("@")
    head, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        return head.lower() + ":" + tag + sep + rest
    return name.lower() + sep + rest
