"""Errors of layer unpack, the layer store and image build (part of the distribution family).

```
DistributionError
 +-- LayerError                a layer cannot be unpacked, stored or built
      +-- UnsafeEntry          an entry would write outside the target (absolute, .., whiteout)
      +-- MalformedLayer       not a tar/gzip/zstd stream we can read, or an unsupported entry
      +-- LayerTooLarge        the size or entry-count limit was hit (decompression bombs)
      +-- DiffIDMismatch       the uncompressed stream does not hash to the config's diff_id
      +-- BuildError           ``image build`` inputs that cannot become a layer or config
```

Every message names the layer (digest or file) and, for entry errors, the entry path.
"""

from __future__ import annotations

from pycontainers.distribution.errors import DigestMismatch, DistributionError


class LayerError(DistributionError):
    """Base of the layer errors; nothing is left half-written when one is raised."""


class UnsafeEntry(LayerError):
    """A tar entry that would create or change something outside its target directory."""

    hint = "the layer is hostile or corrupt; do not use this image"


class MalformedLayer(LayerError):
    """A stream that is not a valid (compressed) tar, or uses a feature we refuse."""


class LayerTooLarge(LayerError):
    """A layer beyond the configured size or entry limit."""

    hint = "raise the limit (UnpackLimits) only if the image is trusted"


class DiffIDMismatch(LayerError, DigestMismatch):
    """The uncompressed layer hashed to something other than the config's diff_id."""


class BuildError(LayerError):
    """An ``image build`` input (directory, tarball, option) that cannot be used."""
