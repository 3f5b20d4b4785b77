"""Where the policy meets images: reading an image's manifest and signatures from a source.

``policy.evaluate`` is pure; this module does the I/O around it. A ``dir:`` image (skopeo's
directory form) has ``manifest.json`` and ``signature-N`` files. A registry image has its
manifest and the layers of the ``sha256-<hex>.sig`` attachment in the same repository.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pycontainers.distribution.errors import TransportError
from pycontainers.distribution.policy import (
    SignatureList,
    UnverifiedImage,
    docker_image,
    path_image,
)
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.sigstore import read_dir_signatures


def dir_image(path: Path, as_reference: ImageRef | None = None) -> UnverifiedImage:
    """A ``dir:`` image; with ``as_reference`` it is judged as if it were that docker image."""
    if not path.is_dir():
        raise TransportError(f"dir:{path}: not a directory")
    try:
        manifest: bytes | None = (path / "manifest.json").read_bytes()
    except FileNotFoundError:
        manifest = None
    except OSError as exc:
        raise TransportError(f"dir:{path}: cannot read manifest.json: {exc.strerror}") from exc

    def signatures() -> SignatureList:
        return read_dir_signatures(path)

    if as_reference is not None:
        image = docker_image(as_reference, manifest, signatures)
        return replace(image, description=f"dir:{path} as docker://{as_reference}")
    return path_image("dir", path, manifest, signatures)
