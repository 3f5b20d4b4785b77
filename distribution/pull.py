"""Pull: resolve a (possibly short) name, then copy it from its registry into the store.

``oci:DIR:NAME`` and ``dir:PATH`` pull from local directories. Their store names follow
Podman's libimage where it is unambiguous: ``localhost/`` + the path for ``dir:``; for
``oci:`` the NAME, a short one put under ``localhost/`` (as ``image build`` names images,
so it is never taken for a Docker Hub image). The trust policy judges them with their
transports' scopes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pycontainers.distribution.dir_transport import DirSource
from pycontainers.distribution.docker_transport import ConnectOptions, DockerSource, open_client
from pycontainers.distribution.errors import (
    NotFound,
    ReferenceError,
    RegistryUnreachable,
    TransportError,
    Unauthorized,
)
from pycontainers.distribution.imagecopy import (
    ACCEPT_ANYTHING,
    CopyOptions,
    CopyResult,
    TrustCheck,
    copy_image,
)
from pycontainers.distribution.layout_transport import LayoutDestination, oci_source
from pycontainers.distribution.progress import CopyProgress
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.store import ContentStore
from pycontainers.distribution.transports import (
    DirName,
    DockerName,
    ImageSource,
    OciName,
    StoreName,
    parse_transport_name,
)

if TYPE_CHECKING:
    from pycontainers.distribution.layerstore import LayerStore

__all__ = ["ACCEPT_ANYTHING", "PullResult", "TrustCheck", "pull"]


@dataclass(frozen=True)
class PullResult:
    ref: ImageRef
    copy: CopyResult

    @property
    def name(self) -> str:
        """The image's name in the store."""
        return str(self.ref)


async def pull_ref(
    ref: ImageRef,
    store_root: Path,
    connect: ConnectOptions,
    options: CopyOptions | None = None,
    progress: CopyProgress | None = None,
    *,
    unpack_into: LayerStore | None = None,
) -> PullResult:
    """Pull one fully qualified reference into the store.

    With ``unpack_into``, each layer that is downloaded is also unpacked into that layer
    store in the same streaming pass (see ``pullunpack``); layers whose blobs were
    already present are left for ``LayerStore.ensure_image``.
    """
    if connect.registries.is_blocked(ref.name):
        raise TransportError(f"{ref}: the registry is blocked in registries.conf")
    src = DockerSource(DockerName(ref), open_client(ref, connect))
    return await _copy_into_store(src, ref, store_root, options, progress, unpack_into)


async def _copy_into_store(
    src: ImageSource,
    ref: ImageRef,
    store_root: Path,
    options: CopyOptions | None,
    progress: CopyProgress | None,
    unpack_into: LayerStore | None,
) -> PullResult:
    """Copy ``src`` into the store as ``ref`` (closing ``src``), unpacking on the way if asked."""
    if unpack_into is not None:
        from pycontainers.distribution.pullunpack import UnpackDuringPull

        sink = UnpackDuringPull(ContentStore(store_root), unpack_into)
        options = replace(options or CopyOptions(), unpack=sink)
    try:
        dst = await LayoutDestination(
            StoreName(str(ref)), ContentStore(store_root), str(ref)
        ).open()
        try:
            result = await copy_image(src, dst, options, progress)
        finally:
            await dst.aclose()
    finally:
        await src.aclose()
    return PullResult(ref, result)


def local_store_name(name: OciName | DirName) -> ImageRef:
    """The store name of an image pulled from ``oci:`` or ``dir:`` (see the module docs)."""
    if isinstance(name, OciName):
        if not name.name:
            raise ReferenceError(f"pull {name}: name the image in the layout (oci:DIR:NAME)")
        ref = ImageRef.parse(name.name)
        return ImageRef.parse(f"localhost/{name.name}") if ref.short else ref
    try:
        return ImageRef.parse(f"localhost{name.path.absolute()}")
    except ReferenceError as exc:
        raise ReferenceError(
            f"pull {name}: the path cannot name an image (localhost/PATH): {exc}; "
            "copy it with image copy and a name instead"
        ) from exc


async def pull_local(
    name: OciName | DirName,
    store_root: Path,
    options: CopyOptions | None = None,
    progress: CopyProgress | None = None,
    *,
    unpack_into: LayerStore | None = None,
) -> PullResult:
    """Copy an ``oci:`` or ``dir:`` image into the store (trust-checked by ``copy_image``)."""
    ref = local_store_name(name)
    src: ImageSource = oci_source(name) if isinstance(name, OciName) else DirSource(name)
    return await _copy_into_store(src, ref, store_root, options, progress, unpack_into)


async def pull(
    text: str,
    store_root: Path,
    connect: ConnectOptions | None = None,
    options: CopyOptions | None = None,
    progress: CopyProgress | None = None,
    *,
    unpack_into: LayerStore | None = None,
) -> PullResult:
    """Pull ``text`` (``busybox``, ``quay.io/a/b:1``, ``docker://...``) into the store."""
    connect = connect or ConnectOptions()
    if text.startswith(("oci:", "dir:")):
        local = parse_transport_name(text)
        assert isinstance(local, OciName | DirName)
        return await pull_local(local, store_root, options, progress, unpack_into=unpack_into)
    text = text.removeprefix("docker://")
    candidates = connect.registries.candidates(text)
    if len(candidates) == 1:
        return await pull_ref(
            candidates[0], store_root, connect, options, progress, unpack_into=unpack_into
        )
    failures: list[str] = []
    for ref in candidates:
        try:
            return await pull_ref(
                ref, store_root, connect, options, progress, unpack_into=unpack_into
            )
        except (NotFound, Unauthorized, RegistryUnreachable, TransportError) as exc:
            failures.append(str(exc))
    raise NotFound(f"{text}: no candidate registry has it: " + "; ".join(failures))
