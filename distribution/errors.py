"""The distribution exception family, so callers react by type instead of by message.

```
DistributionError
 +-- ReferenceError            an image reference or transport name does not parse
 +-- DigestError               a digest string is malformed or uses an unknown algorithm
 +-- ContentError              bytes do not match what their descriptor promised
 |    +-- DigestMismatch       content hashes to another digest
 |    +-- SizeMismatch         content is shorter or longer than the descriptor's size
 +-- ManifestError             a manifest, index or config is not JSON or not the schema
 |    +-- UnsupportedMediaType a media type we do not handle (schema 1 included)
 |    +-- NoMatchingPlatform   an index has no manifest for the wanted platform
 +-- RegistryError             the registry answered with an error (carries status)
 |    +-- NotFound             404: unknown repository, tag, manifest or blob
 |    +-- Unauthorized         401: no or wrong credentials
 |    +-- Forbidden            403: credentials valid, access denied
 |    +-- RateLimited          429 (transient)
 |    +-- RegistryServerError  5xx (transient)
 |    +-- RegistryUnreachable  connection refused/reset/timeout, TLS failure (transient)
 |    +-- InsecureRegistry     plain HTTP was needed but the registry is not marked insecure
 +-- AuthError                 credentials files or token endpoint unusable
 +-- StoreError                the content store at the storage root
 |    +-- ImageNotKnown        no image by that name in the store (or an oci:/dir: source)
 |    +-- BlobNotFound         a blob the store should hold is missing
 +-- TransportError            a transport (oci:, dir:, docker://) cannot do what was asked
 +-- TrustError                the trust check rejected an image (signatures, policy)
```

Messages are lower case without a trailing period and name the image, digest or path
plus the cause; ``diagnostics()`` adds the operator's next step where there is one.
``transient`` says whether retrying the same operation later can succeed.
"""

from __future__ import annotations


class DistributionError(Exception):
    """Base of every error the distribution package raises across its boundary."""

    hint: str = ""
    transient: bool = False

    def diagnostics(self) -> str:
        return f"{self}\n  hint: {self.hint}" if self.hint else str(self)


class ReferenceError(DistributionError):
    """An image reference (or transport name) that does not follow the grammar."""


class DigestError(DistributionError):
    """A digest string that is malformed or names an algorithm we cannot verify."""


class ContentError(DistributionError):
    """Bytes that are not what their descriptor promised; never stored."""


class DigestMismatch(ContentError):
    """Content hashed to a digest other than the expected one."""


class SizeMismatch(ContentError):
    """Content shorter or longer than the size in its descriptor."""


class ManifestError(DistributionError):
    """A manifest, index or image config that is not valid JSON or not the schema."""


class UnsupportedMediaType(ManifestError):
    """A media type this package does not handle (Docker schema 1 included)."""


class NoMatchingPlatform(ManifestError):
    """An index without a manifest for the wanted os/architecture/variant."""


class RegistryError(DistributionError):
    """An error answer from a registry; ``status`` is the HTTP status (0 if none)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(RegistryError):
    pass


class Unauthorized(RegistryError):
    hint = "log in with `pycontainers image login REGISTRY` or check the credentials"


class Forbidden(RegistryError):
    hint = "the credentials are valid but do not grant this access"


class RateLimited(RegistryError):
    transient = True

    def __init__(
        self, message: str, *, status: int = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class RegistryServerError(RegistryError):
    transient = True


class RegistryUnreachable(RegistryError):
    transient = True


class InsecureRegistry(RegistryError):
    hint = "mark the registry insecure (--tls-verify=false or registries.conf) to allow http"


class AuthError(DistributionError):
    """Credentials files that do not parse, or a token endpoint that fails."""


class StoreError(DistributionError):
    """The content store (an OCI layout) cannot do what was asked."""


class ImageNotKnown(StoreError):
    pass


class BlobNotFound(StoreError):
    pass


class TransportError(DistributionError):
    """A transport that cannot do what was asked (read-only, unknown, malformed dir)."""


class TrustError(DistributionError):
    """The trust check refused an image; raised before any layer is fetched."""
