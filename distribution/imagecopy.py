"""Copy an image between transports: the one path pull, push and ``image copy`` share.

Order of work (and why):

1. fetch the source's top-level manifest (bytes kept exactly as received);
2. **trust check** on those bytes and their digest, before any blob is fetched, so a
   rejected image never reaches the store;
3. if it is an index, pick the platform's manifest (or, with ``all_platforms``, every
   instance) and fetch it by digest (verified);
4. transfer config and layer blobs, at most ``parallel`` at a time, skipping blobs the
   destination already has (a second pull downloads nothing); with ``unpack`` (a pull
   that needs the layer dirs) the config comes first and each downloaded layer is
   unpacked in the same streaming pass (``pullunpack``);
5. write the manifest(s); the top-level one gets the destination's name last, so a
   name never points at an image whose blobs are not all present;
6. carry the source's signatures of that top-level manifest over, where both ends keep
   signatures (``docker://``'s ``.sig`` attachment, ``dir:``'s ``signature-N``), as
   skopeo copy does; a platform picked out of an index is another manifest, so its
   copy gets none.

The trust hook
--------------
``TrustCheck`` is the seam for signature and policy verification (containers-policy.json,
sigstore; ``trust.PolicyTrustCheck`` implements it): ``await check(ref, manifest,
manifest_digest, client)`` receives the ``ImageRef`` of a ``docker://`` source, the exact
bytes of the top-level manifest (an index for a multi-arch image, as cosign signs and
containers/image verifies), its digest, and the source's ``RegistryClient`` to fetch
``.sig`` tags or referrers with. It returns (any value) to accept and raises a
``DistributionError`` (normally a ``TrustError`` subclass) to reject; the copy then stops
before any config or layer blob is fetched. Local sources (``oci:``, ``dir:``, the store)
are judged too, as containers/image judges them, when the check also implements
``LocalTrustCheck.check_local(name, manifest, manifest_digest)`` (``PolicyTrustCheck``
does): a policy whose default is ``reject`` refuses an ``oci:`` directory it has no
scope for. The default, ``ACCEPT_ANYTHING``, accepts everything (containers-policy's
``insecureAcceptAnything``).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import ManifestError, TransportError
from pycontainers.distribution.manifest import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    parse_manifest,
)
from pycontainers.distribution.progress import CopyProgress, QuietProgress
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.registry import RawManifest, RegistryClient
from pycontainers.distribution.store import BlobTap, BlobWriter
from pycontainers.distribution.transports import (
    DockerName,
    ImageDestination,
    ImageSource,
    ProgressFn,
    SignatureDestination,
    SignatureSource,
    TransportName,
)


class TrustCheck(Protocol):
    """Accepts (returns) or rejects (raises a DistributionError) an image before its blobs."""

    async def check(
        self, ref: ImageRef, manifest: bytes, manifest_digest: Digest, client: RegistryClient
    ) -> object: ...


@runtime_checkable
class LocalTrustCheck(Protocol):
    """A trust check that also judges local sources (``oci:``, ``dir:``, the store)."""

    async def check_local(
        self, name: TransportName, manifest: bytes, manifest_digest: Digest
    ) -> object: ...


class AcceptAnything:
    """The default trust check: every image is accepted."""

    async def check(
        self, ref: ImageRef, manifest: bytes, manifest_digest: Digest, client: RegistryClient
    ) -> object:
        return None

    async def check_local(
        self, name: TransportName, manifest: bytes, manifest_digest: Digest
    ) -> object:
        return None


ACCEPT_ANYTHING: TrustCheck = AcceptAnything()


class UnpackSink(Protocol):
    """Unpacks layers while they download (``pullunpack.UnpackDuringPull``)."""

    def plan(self, manifest: ImageManifest, label: str) -> dict[Digest, tuple[str, Digest]]:
        """Layer blob digest -> (media type, diff_id) for layers to unpack during the copy."""
        ...

    def tap(self, media_type: str, diff_id: Digest, what: str) -> BlobTap: ...


@dataclass
class CopyOptions:
    platform: Platform | None = None
    all_platforms: bool = False
    parallel: int = 3
    trust: TrustCheck = ACCEPT_ANYTHING
    temp_dir: Path | None = None  # registry-to-registry copies stage blobs here
    unpack: UnpackSink | None = None  # local destinations only: unpack layers as they arrive


@dataclass
class CopyResult:
    """What was copied: the manifest the destination name now points at, and the work done."""

    manifest: Descriptor
    source_digest: Digest
    fetched: list[Digest] = field(default_factory=list)
    present: list[Digest] = field(default_factory=list)
    bytes_fetched: int = 0


async def copy_image(
    src: ImageSource,
    dst: ImageDestination,
    options: CopyOptions | None = None,
    progress: CopyProgress | None = None,
) -> CopyResult:
    """Copy one image (or an index with all its instances) from ``src`` to ``dst``."""
    options = options or CopyOptions()
    progress = progress or QuietProgress()
    label = str(src.name.ref) if isinstance(src.name, DockerName) else str(src.name)
    top = await src.get_manifest()
    if isinstance(src.name, DockerName) and src.client is not None:
        await options.trust.check(src.name.ref, top.raw, top.digest, src.client)
    elif isinstance(options.trust, LocalTrustCheck):
        await options.trust.check_local(src.name, top.raw, top.digest)
    parsed = parse_manifest(top.raw, top.media_type, what=label)
    result = CopyResult(manifest=parsed.descriptor(), source_digest=top.digest)
    if isinstance(parsed, ImageIndex) and not options.all_platforms:
        chosen = parsed.select(options.platform, what=label)
        instance = await src.get_manifest(chosen.digest)
        manifest = _image_manifest(instance, chosen.media_type, f"{label}@{chosen.digest}")
        await _copy_blobs(src, dst, manifest, options, progress, result, label)
        await dst.put_manifest(instance, top_level=True, source_digest=top.digest)
        result.manifest = manifest.descriptor()
    elif isinstance(parsed, ImageIndex):
        for entry in parsed.manifests:
            instance = await src.get_manifest(entry.digest)
            manifest = _image_manifest(instance, entry.media_type, f"{label}@{entry.digest}")
            await _copy_blobs(src, dst, manifest, options, progress, result, label)
            await dst.put_manifest(instance, top_level=False)
        await dst.put_manifest(top, top_level=True)
    else:
        await _copy_blobs(src, dst, parsed, options, progress, result, label)
        await dst.put_manifest(top, top_level=True)
    if result.manifest.digest == top.digest:
        await _copy_signatures(src, dst, top.digest)
    progress.finish()
    return result


async def _copy_signatures(src: ImageSource, dst: ImageDestination, digest: Digest) -> None:
    """Carry the source's signatures of the top-level manifest over, as skopeo copy does.

    Only when the destination's top-level manifest is byte-for-byte the source's (a
    platform picked out of an index is a different manifest the signatures do not sign).
    """
    if not (isinstance(src, SignatureSource) and isinstance(dst, SignatureDestination)):
        return
    sigs = await src.get_signatures(digest)
    if sigs:
        await dst.put_signatures(digest, sigs)


def _image_manifest(raw: RawManifest, declared: str, what: str) -> ImageManifest:
    parsed = parse_manifest(raw.raw, raw.media_type or declared, what=what)
    if not isinstance(parsed, ImageManifest):
        raise ManifestError(f"{what}: nested indexes are not supported")
    return parsed


async def _copy_blobs(
    src: ImageSource,
    dst: ImageDestination,
    manifest: ImageManifest,
    options: CopyOptions,
    progress: CopyProgress,
    result: CopyResult,
    label: str,
) -> None:
    limit = asyncio.Semaphore(max(1, options.parallel))
    blobs = sorted(
        {d.digest: d for d in manifest.blobs() if not d.urls}.values(), key=lambda d: -d.size
    )
    taps: dict[Digest, tuple[str, Digest]] = {}

    async def one(desc: Descriptor) -> None:
        async with limit:
            how = await _transfer_blob(src, dst, desc, options, progress, label, taps)
        if how == "exists":
            result.present.append(desc.digest)
        else:
            result.fetched.append(desc.digest)
            result.bytes_fetched += desc.size
        progress.blob_done(desc, how)

    if options.unpack is not None and not manifest.config.urls:
        # The config first: its diff_ids say what each layer must unpack to.
        await one(manifest.config)
        blobs = [d for d in blobs if d.digest != manifest.config.digest]
        taps = await asyncio.to_thread(options.unpack.plan, manifest, label)
    try:
        async with asyncio.TaskGroup() as group:
            for desc in blobs:
                group.create_task(one(desc))
    except ExceptionGroup as group_error:
        # The first failure cancelled the other transfers; report it alone, as the
        # error of this copy, instead of a group the caller would have to unpack.
        raise _first_leaf(group_error) from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


async def _transfer_blob(
    src: ImageSource,
    dst: ImageDestination,
    desc: Descriptor,
    options: CopyOptions,
    progress: CopyProgress,
    label: str,
    taps: dict[Digest, tuple[str, Digest]] | None = None,
) -> str:
    what = f"{label}: blob {desc.digest}"
    async with dst.claim(desc):
        if await dst.has_blob(desc):
            return "exists"
        local = src.local_blob(desc)
        writer = dst.blob_writer(desc, what)
        if writer is not None:
            if options.unpack is not None and taps and desc.digest in taps:
                media_type, diff_id = taps[desc.digest]
                writer.tap = options.unpack.tap(media_type, diff_id, f"{what}: layer")
            advance = progress.blob_started(desc, label)
            with writer:
                if local is not None:
                    await asyncio.to_thread(_feed_file, local, writer, advance)
                else:
                    await src.fetch_blob(desc, writer, advance)
            return "fetched"
        if await dst.try_mount(desc, src):
            return "mounted"
        advance = progress.blob_started(desc, label)
        if local is not None:
            await dst.push_blob(desc, local, src, advance)
            return "uploaded"
        staging = Path(tempfile.mkdtemp(prefix="pyc-copy-", dir=options.temp_dir))
        try:
            staged = staging / desc.digest.hex
            with BlobWriter(staging, staged, desc, what=what) as tmp:
                await src.fetch_blob(desc, tmp, None)
            if not staged.exists():
                raise TransportError(f"{what}: staging failed")
            await dst.push_blob(desc, staged, src, advance)
        finally:
            for p in staging.iterdir():
                os.unlink(p)
            staging.rmdir()
        return "uploaded"


def _feed_file(path: Path, writer: BlobWriter, advance: ProgressFn) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            writer.write(chunk)
            advance(len(chunk))
    writer.commit()
