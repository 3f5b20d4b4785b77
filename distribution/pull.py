"""Pull: resolve a (possibly short) name, then copy it from its registry into the store.

A short name is tried against each candidate from registries.conf (alias, then search
registries) until one exists; the stored name is the full reference
(``docker.io/library/busybox:latest``). Trust is checked on the top-level manifest before
any blob is fetched (see ``imagecopy`` for the ``TrustCheck`` hook).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pycontainers.distribution.docker_transport import ConnectOptions, DockerSource, open_client
from pycontainers.distribution.errors import (
    NotFound,
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
from pycontainers.distribution.layout_transport import LayoutDestination
from pycontainers.distribution.progress import CopyProgress
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.store import ContentStore
from pycontainers.distribution.transports import DockerName, StoreName

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
    if unpack_into is not None:
        from pycontainers.distribution.pullunpack import UnpackDuringPull

        sink = UnpackDuringPull(ContentStore(store_root), unpack_into)
        options = replace(options or CopyOptions(), unpack=sink)
    src = DockerSource(DockerName(ref), open_client(ref, connect))
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
