"""Images for containers: pull by the spec's pull policy (trust-checked), unpack the layers.

The pull goes through distribution's copy pipeline with the trust policy as its hook, so
an image the policy refuses never reaches the store; a spec's ``signature`` pins a key on
top of the host policy. Blocking work (reading the store, unpacking layers) runs in a
thread so the daemon's loop keeps answering systemd (watchdog, unit signals).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycontainers.distribution.docker_transport import ConnectOptions, open_client
from pycontainers.distribution.errors import DistributionError
from pycontainers.distribution.imagecopy import CopyOptions, TrustCheck
from pycontainers.distribution.layerstore import LayerStore, resolve_image
from pycontainers.distribution.pull import pull_ref
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.store import ContentStore
from pycontainers.reconciler.errors import ReconcilerError
from pycontainers.reconciler.layout import EnginePaths
from pycontainers.reconciler.spec import ContainerSpec


class ImageError(ReconcilerError):
    """An image could not be pulled, verified or unpacked for a container."""


@dataclass(frozen=True)
class PreparedImage:
    name: str
    """The image's name in the store (the fully qualified reference)."""
    digest: str
    """The manifest (or index) digest the name points at."""
    config: Mapping[str, Any]
    """The image config's ``config`` object (Entrypoint, Cmd, Env, User, WorkingDir)."""
    layers: tuple[Path, ...]
    """Unpacked layer directories, bottom first."""


def _connect_options() -> ConnectOptions:
    from pycontainers.distribution.registries_conf import RegistriesConf

    return ConnectOptions(registries=RegistriesConf.load())


class ImageSupply:
    def __init__(self, paths: EnginePaths, policy_path: str | None = None) -> None:
        self.paths = paths
        self.policy_path = policy_path
        self.store = ContentStore(paths.storage)
        self.layers = LayerStore(paths.layers)
        self._connect: ConnectOptions | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def connect(self) -> ConnectOptions:
        if self._connect is None:
            self._connect = _connect_options()
        return self._connect

    def _trust(self, spec: ContainerSpec, ref: ImageRef) -> TrustCheck:
        from pycontainers.distribution.policy import load_policy
        from pycontainers.distribution.trust import PolicyTrustCheck

        policy = load_policy(self.policy_path)
        if spec.signature is not None:
            pems = [spec.signature.public_key.encode()] if spec.signature.public_key else []
            files = [spec.signature.public_key_file] if spec.signature.public_key_file else []
            policy = policy.pin_keys(ref, files, key_pems=pems)
        return PolicyTrustCheck(policy)

    def stored_digest(self, name: str) -> str | None:
        """The digest ``name`` had in its registry when pulled: for an image picked from a
        multi-arch index that is the index's digest, which is what a tag HEAD and a pinned
        ``@sha256:`` name report; comparing the platform manifest's would look stale forever."""
        if not self.store.exists():
            return None
        try:
            return str(self.store.source_digest(name))
        except DistributionError:
            return None

    async def remote_digest(self, image: str) -> str | None:
        """What a tag points at in its registry now (a HEAD request; for auto-update)."""
        ref = ImageRef.parse(image)
        if ref.digest is not None:
            return str(ref.digest)
        client = open_client(ref, self.connect)
        try:
            desc = await client.head_manifest(ref.repository, ref.reference)
        except DistributionError as exc:
            raise ImageError(f"image {ref}: cannot check the tag: {exc}") from exc
        finally:
            await client.aclose()
        return str(desc.digest) if desc is not None else None

    async def prepare(
        self, spec: ContainerSpec, *, want_digest: str | None = None
    ) -> PreparedImage:
        """Pull if the policy says so, check the digest, unpack the layers."""
        ref = ImageRef.parse(spec.image)
        name = str(ref)
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            digest = self.stored_digest(name)
            pinned = str(ref.digest) if ref.digest is not None else None
            policy = spec.image_pull_policy
            stale = want_digest is not None and digest != want_digest
            if policy == "Always" or digest is None or stale:
                if policy == "Never":
                    raise ImageError(
                        f"image {name} is not in the store and imagePullPolicy is Never"
                    )
                await self._pull(spec, ref)
                digest = self.stored_digest(name)
            if digest is None:
                raise ImageError(f"image {name}: not in the store after the pull")
            if pinned is not None and digest != pinned:
                raise ImageError(f"image {name}: the store has {digest}, the spec pins {pinned}")
            config, layers = await asyncio.to_thread(self._unpack, name)
        return PreparedImage(name, digest, config, tuple(layers))

    async def _pull(self, spec: ContainerSpec, ref: ImageRef) -> None:
        try:
            self.store.init()
            options = CopyOptions(trust=self._trust(spec, ref))
            # Layers unpack while they download; _unpack then finds them in place.
            await pull_ref(ref, self.paths.storage, self.connect, options, unpack_into=self.layers)
        except DistributionError as exc:
            text = exc.diagnostics() if getattr(exc, "hint", "") else str(exc)
            raise ImageError(f"pull {ref}: {text}") from exc

    def _unpack(self, name: str) -> tuple[Mapping[str, Any], list[Path]]:
        try:
            image = resolve_image(self.store, name)
            layers = self.layers.ensure_image(self.store, image)
        except DistributionError as exc:
            raise ImageError(f"image {name}: {exc}") from exc
        config = image.config.config
        return (config if isinstance(config, Mapping) else {}), layers
