"""The image trust policy: containers-policy.json(5), parsed strictly and evaluated.

A policy maps *scopes* to lists of *requirements*; every requirement in the list that
applies must accept the image. The scope is found as containers/image finds it:
within ``transports[<transport>]``, first the image's full identity
(``registry/repo:tag`` or ``registry/repo@digest``), then its repository and each parent
namespace up to the registry host, then wildcard hosts (``*.example.com``, ``*.com``),
then the transport's ``""`` scope; failing all, ``default``. The most specific scope
wins outright: scopes are never merged.

Requirements: ``insecureAcceptAnything``, ``reject``, ``sigstoreSigned`` with keys
(``keyPath``/``keyPaths``/``keyData``/``keyDatas``) and ``signedIdentity``. Fulcio, PKI,
Rekor and GPG (``signedBy``) requirements parse, but always refuse: a policy that asks
for a check we cannot make fails closed. A malformed policy is a ``PolicyError``, never
"accept everything".

This module is the file format and the model (what each rule means);
``policy_eval.py`` applies it to an image.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pycontainers.distribution.cosign_key import PublicKey, SigningKeyError, load_public_key
from pycontainers.distribution.errors import DistributionError, ReferenceError
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.sigstore import SignatureRejected, Why

SYSTEM_POLICY = Path("/etc/containers/policy.json")
# The project's own default when no policy file exists: the same as containers-common
# ships (and Debian installs with skopeo), so pycontainers behaves like skopeo and podman
# on the same host whether or not that package is installed. docs/trust.md says how to
# lock it down.
DEFAULT_POLICY_JSON = """{
    "default": [{"type": "insecureAcceptAnything"}],
    "transports": {"docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}}
}
"""


class PolicyError(DistributionError):
    """A policy file that cannot be read or does not follow containers-policy.json(5)."""

    hint = "see containers-policy.json(5) and docs/trust.md"


# --- signedIdentity -----------------------------------------------------------------------


def parse_docker_reference(text: str) -> ImageRef:
    """Parse and normalise like Go's ``ParseNormalizedNamed``: no implicit ``:latest``.

    A signature's identity may be name-only (cosign signs the repository), and the
    identity rules must tell that apart from ``:latest``.
    """
    ref = ImageRef.parse(text)
    name = text.split("@", 1)[0]
    if ":" not in name.rsplit("/", 1)[-1]:
        ref = ref.with_tag(None)
    return ref


def name_only(ref: ImageRef) -> bool:
    return ref.tag is None and ref.digest is None


def _repo_digest_or_exact(intended: ImageRef, signed: ImageRef) -> bool:
    if name_only(signed):
        return False
    if intended.tag is not None:
        return str(signed) == str(intended)
    if intended.digest is not None:
        # The manifest digest itself is checked against the payload separately.
        return signed.name == intended.name
    return False


@dataclass(frozen=True)
class SignedIdentity:
    """How a signature's ``docker-reference`` must relate to the image's reference."""

    type: str = "matchRepoDigestOrExact"
    docker_reference: str | None = None  # exactReference
    docker_repository: str | None = None  # exactRepository
    prefix: str | None = None  # remapIdentity
    signed_prefix: str | None = None  # remapIdentity

    def describe(self) -> str:
        if self.type == "exactReference":
            return f"exactReference {self.docker_reference}"
        if self.type == "exactRepository":
            return f"exactRepository {self.docker_repository}"
        if self.type == "remapIdentity":
            return f"remapIdentity {self.prefix} -> {self.signed_prefix}"
        return self.type

    def matches(self, image: ImageRef | None, signed_text: str) -> bool:
        try:
            signed = parse_docker_reference(signed_text)
        except ReferenceError:
            return False
        if self.type == "exactReference":
            assert self.docker_reference is not None
            want = parse_docker_reference(self.docker_reference)
            return not name_only(signed) and str(signed) == str(want)
        if self.type == "exactRepository":
            assert self.docker_repository is not None
            return signed.name == parse_docker_reference(self.docker_repository).name
        if image is None:
            return False
        if self.type == "matchExact":
            return not name_only(image) and not name_only(signed) and str(signed) == str(image)
        if self.type == "matchRepository":
            return signed.name == image.name
        if self.type == "remapIdentity":
            remapped = self._remap(image)
            return remapped is not None and _repo_digest_or_exact(remapped, signed)
        return _repo_digest_or_exact(image, signed)

    def _remap(self, image: ImageRef) -> ImageRef | None:
        assert self.prefix is not None and self.signed_prefix is not None
        text = str(image)
        if text == self.prefix:
            new = self.signed_prefix
        elif text.startswith(self.prefix) and text[len(self.prefix)] in "/:@":
            new = self.signed_prefix + text[len(self.prefix) :]
        else:
            return image
        try:
            return parse_docker_reference(new)
        except ReferenceError:
            return None


# --- requirements -------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One entry of a scope's list. ``type`` is the policy's; the rest per type."""

    type: str
    key_paths: tuple[Path, ...] = ()
    key_datas: tuple[bytes, ...] = ()
    signed_identity: SignedIdentity = field(default_factory=SignedIdentity)
    unsupported: str | None = None  # why this requirement always refuses

    def describe(self) -> str:
        if self.type != "sigstoreSigned" or self.unsupported:
            return self.type
        keys = [str(p) for p in self.key_paths] + ["keyData"] * len(self.key_datas)
        return (
            f"sigstoreSigned (key {', '.join(keys)}; "
            f"signedIdentity {self.signed_identity.describe()})"
        )

    def load_keys(self) -> list[PublicKey]:
        keys = []
        for path in self.key_paths:
            try:
                pem = path.read_bytes()
            except OSError as exc:
                raise SignatureRejected(
                    f"cannot read key {path}: {exc.strerror}", Why.KEY_UNUSABLE
                ) from exc
            keys.append(self._load(pem, str(path)))
        for i, pem in enumerate(self.key_datas):
            keys.append(self._load(pem, f"keyData[{i}]"))
        return keys

    @staticmethod
    def _load(pem: bytes, source: str) -> PublicKey:
        try:
            return load_public_key(pem, source=source)
        except SigningKeyError as exc:
            raise SignatureRejected(str(exc), Why.KEY_UNUSABLE) from exc


# --- the policy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """A parsed policy. ``source`` names the file (or the built-in default) in messages."""

    default: tuple[Requirement, ...]
    transports: Mapping[str, Mapping[str, tuple[Requirement, ...]]]
    source: str = "built-in default policy"

    def scope_for(
        self, transport: str, candidates: Iterable[str]
    ) -> tuple[str, tuple[Requirement, ...]]:
        """The first of ``candidates`` (most specific first) with a scope, else defaults."""
        scopes = self.transports.get(transport)
        if scopes is not None:
            for name in (*candidates, ""):
                if name in scopes:
                    return f'transports.{transport}["{name}"]', scopes[name]
        return "default", self.default

    def with_scope(self, transport: str, scope: str, reqs: Sequence[Requirement]) -> Policy:
        """A copy with ``transports[transport][scope]`` set: how a spec pins a key."""
        transports = {t: dict(s) for t, s in self.transports.items()}
        transports.setdefault(transport, {})[scope] = tuple(reqs)
        return replace(self, transports=transports)

    def pin_keys(
        self,
        ref: ImageRef,
        key_paths: Sequence[str | Path] = (),
        signed_identity: SignedIdentity | None = None,
        *,
        key_pems: Sequence[bytes] = (),
    ) -> Policy:
        """Require ``ref``'s repository to be sigstore-signed by one of the given keys.

        This is how a container spec pins a key (a file, or PEM text inline): the new
        repository scope is more specific than any registry-wide one, so it wins. The
        identity defaults to ``matchRepoDigestOrExact``; images signed by ``cosign sign``
        carry a name-only identity and need ``SignedIdentity("matchRepository")``.
        """
        if not key_paths and not key_pems:
            raise PolicyError(f"pinning keys for {ref.name}: no key given")
        req = Requirement(
            "sigstoreSigned",
            key_paths=tuple(Path(p).absolute() for p in key_paths),
            key_datas=tuple(key_pems),
            signed_identity=signed_identity or SignedIdentity(),
        )
        return self.with_scope("docker", ref.name, [req])


def default_policy_path() -> Path | None:
    """The file containers/image would read: the user's, then the system's, else none."""
    if os.geteuid() != 0:
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        user = Path(config) / "containers" / "policy.json"
        if user.exists():
            return user
    return SYSTEM_POLICY if SYSTEM_POLICY.exists() else None


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy from ``path``, else the default file, else the built-in default."""
    chosen = Path(path) if path is not None else default_policy_path()
    if chosen is None:
        return parse_policy(DEFAULT_POLICY_JSON.encode(), source="built-in default policy")
    try:
        data = chosen.read_bytes()
    except OSError as exc:
        raise PolicyError(f"policy {chosen}: cannot read: {exc.strerror}") from exc
    return parse_policy(data, source=str(chosen), base_dir=chosen.absolute().parent)


def parse_policy(data: bytes, *, source: str, base_dir: Path | None = None) -> Policy:
    """Parse a policy document strictly; relative key paths resolve against ``base_dir``."""
    try:
        doc = json.loads(data, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy {source}: not valid JSON: {exc}") from exc
    parser = _Parser(source, base_dir or Path.cwd())
    obj = parser.obj(doc, "")
    parser.fields(obj, "", allowed={"default", "transports"}, required={"default"})
    default = parser.requirements(obj["default"], "default")
    transports: dict[str, dict[str, tuple[Requirement, ...]]] = {}
    for transport, scopes in parser.obj(obj.get("transports", {}), "transports").items():
        where = f"transports.{transport}"
        transports[transport] = {}
        for scope, reqs in parser.obj(scopes, where).items():
            parser.scope(transport, scope, where)
            transports[transport][scope] = parser.requirements(reqs, f'{where}["{scope}"]')
    return Policy(default, transports, source)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


_SIGSTORE_FIELDS = {
    "type",
    "keyPath",
    "keyPaths",
    "keyData",
    "keyDatas",
    "fulcio",
    "rekorPublicKeyPath",
    "rekorPublicKeyPaths",
    "rekorPublicKeyData",
    "rekorPublicKeyDatas",
    "pki",
    "signedIdentity",
}
_TRUST_ROOTS = ("keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki")


@dataclass
class _Parser:
    source: str
    base_dir: Path

    def fail(self, where: str, msg: str) -> PolicyError:
        at = f" at {where}" if where else ""
        return PolicyError(f"policy {self.source}{at}: {msg}")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"want a JSON object, got {type(value).__name__}")
        return value

    def fields(
        self, obj: Mapping[str, Any], where: str, allowed: set[str], required: Iterable[str] = ()
    ) -> None:
        unknown = sorted(set(obj) - allowed)
        if unknown:
            raise self.fail(where, f"unknown field {unknown[0]!r}")
        for name in required:
            if name not in obj:
                raise self.fail(where, f"missing field {name!r}")

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, "want a non-empty string")
        return value

    def strings(self, value: Any, where: str) -> list[str]:
        if not isinstance(value, list) or not value:
            raise self.fail(where, "want a non-empty list of strings")
        return [self.string(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def scope(self, transport: str, scope: str, where: str) -> None:
        if scope == "":
            return
        at = f'{where}["{scope}"]'
        if transport == "docker":
            self.docker_scope(scope, at)
        elif transport in ("dir", "oci", "oci-archive", "docker-archive") and not scope.startswith(
            "/"
        ):
            raise self.fail(at, f"scopes of the {transport} transport must be absolute paths")

    def docker_scope(self, scope: str, where: str) -> None:
        if scope.startswith("*."):
            host = scope[2:]
            if not host or "/" in host or ":" in host or "*" in host:
                raise self.fail(where, "a wildcard scope must look like *.example.com")
            return
        first = scope.split("/", 1)[0]
        if "/" in scope and not ("." in first or ":" in first or first == "localhost"):
            raise self.fail(
                where,
                f"scope is not fully qualified: {first!r} is not a registry host "
                f"(did you mean docker.io/{scope}?)",
            )
        try:
            ref = parse_docker_reference(scope if "/" in scope else f"{scope}/x")
        except ReferenceError as exc:
            raise self.fail(where, f"invalid scope: {exc}") from exc
        if "/" in scope and str(ref) != scope:
            raise self.fail(where, f"scope is not normalised: write {str(ref)!r}")

    def requirements(self, value: Any, where: str) -> tuple[Requirement, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(where, "want a non-empty list of requirements")
        return tuple(self.requirement(v, f"{where}[{i}]") for i, v in enumerate(value))

    def requirement(self, value: Any, where: str) -> Requirement:
        obj = self.obj(value, where)
        kind = obj.get("type")
        if kind in ("insecureAcceptAnything", "reject"):
            self.fields(obj, where, {"type"})
            return Requirement(kind)
        if kind == "signedBy":
            self.fields(
                obj,
                where,
                {"type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"},
                required={"keyType"},
            )
            return Requirement(kind, unsupported="gpg signatures (signedBy) are not supported")
        if kind == "sigstoreSigned":
            return self.sigstore(obj, where)
        raise self.fail(where, f"unknown requirement type {kind!r}")

    def sigstore(self, obj: Mapping[str, Any], where: str) -> Requirement:
        self.fields(obj, where, _SIGSTORE_FIELDS)
        roots = [name for name in _TRUST_ROOTS if name in obj]
        if len(roots) != 1:
            raise self.fail(
                where, f"want exactly one of {', '.join(_TRUST_ROOTS)}, got {roots or 'none'}"
            )
        identity = self.signed_identity(obj.get("signedIdentity"), f"{where}.signedIdentity")
        root = roots[0]
        paths: list[Path] = []
        datas: list[bytes] = []
        if root == "keyPath":
            paths = [self.base_dir / self.string(obj[root], f"{where}.keyPath")]
        elif root == "keyPaths":
            paths = [self.base_dir / p for p in self.strings(obj[root], f"{where}.keyPaths")]
        elif root == "keyData":
            datas = [self.key_data(obj[root], f"{where}.keyData")]
        elif root == "keyDatas":
            if not isinstance(obj[root], list) or not obj[root]:
                raise self.fail(f"{where}.keyDatas", "want a non-empty list of strings")
            datas = [self.key_data(v, f"{where}.keyDatas[{i}]") for i, v in enumerate(obj[root])]
        unsupported = None
        if root in ("fulcio", "pki"):
            unsupported = f"sigstoreSigned with {root} certificates is not supported"
        elif any(k.startswith("rekor") for k in obj):
            unsupported = "sigstoreSigned with rekor transparency-log checks is not supported"
        return Requirement(
            "sigstoreSigned",
            key_paths=tuple(paths),
            key_datas=tuple(datas),
            signed_identity=identity,
            unsupported=unsupported,
        )

    def key_data(self, value: Any, where: str) -> bytes:
        try:
            return base64.b64decode(self.string(value, where), validate=True)
        except binascii.Error as exc:
            raise self.fail(where, "not base64") from exc

    def signed_identity(self, value: Any, where: str) -> SignedIdentity:
        if value is None:
            return SignedIdentity()
        obj = self.obj(value, where)
        kind = obj.get("type")
        if kind in ("matchExact", "matchRepoDigestOrExact", "matchRepository"):
            self.fields(obj, where, {"type"})
            return SignedIdentity(kind)
        if kind == "exactReference":
            self.fields(obj, where, {"type", "dockerReference"}, required={"dockerReference"})
            ref = self.reference(obj["dockerReference"], f"{where}.dockerReference")
            if name_only(ref):
                raise self.fail(where, "dockerReference must have a tag or a digest")
            return SignedIdentity(kind, docker_reference=obj["dockerReference"])
        if kind == "exactRepository":
            self.fields(obj, where, {"type", "dockerRepository"}, required={"dockerRepository"})
            ref = self.reference(obj["dockerRepository"], f"{where}.dockerRepository")
            if not name_only(ref):
                raise self.fail(where, "dockerRepository must not have a tag or digest")
            return SignedIdentity(kind, docker_repository=obj["dockerRepository"])
        if kind == "remapIdentity":
            self.fields(obj, where, {"type", "prefix", "signedPrefix"}, {"prefix", "signedPrefix"})
            prefix = self.prefix(obj["prefix"], f"{where}.prefix")
            signed = self.prefix(obj["signedPrefix"], f"{where}.signedPrefix")
            return SignedIdentity(kind, prefix=prefix, signed_prefix=signed)
        raise self.fail(where, f"unknown signedIdentity type {kind!r}")

    def reference(self, value: Any, where: str) -> ImageRef:
        try:
            return parse_docker_reference(self.string(value, where))
        except ReferenceError as exc:
            raise self.fail(where, str(exc)) from exc

    def prefix(self, value: Any, where: str) -> str:
        text = self.string(value, where)
        try:
            ref = parse_docker_reference(text if "/" in text else f"{text}/x")
        except ReferenceError as exc:
            raise self.fail(where, f"invalid prefix {text!r}: {exc}") from exc
        if not name_only(ref) or ("/" in text and ref.name != text) or ref.short:
            raise self.fail(
                where, f"invalid prefix {text!r}: want a registry host or a full repository"
            )
        return text
