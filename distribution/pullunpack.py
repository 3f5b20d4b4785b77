"""Unpack layers while their blobs download: one streaming pass per layer during a pull.

A pull that will need the layer directories anyway (the engine's) hands
``UnpackDuringPull`` to ``copy_image`` (``CopyOptions.unpack``). Once the config blob is
in the store, ``plan`` maps each layer blob to its diff_id; every layer that is not
unpacked yet gets a ``LayerTap`` on its ``BlobWriter``: the writer's thread feeds the
verified-so-far bytes into a ``FeedStream`` and a thread runs ``LayerStore.ensure`` on
it, so download, sha256, gunzip, diff_id hash and extraction overlap.

What appears when (the store never holds an unverified blob or layer):

* the unpack sees end-of-stream only after the blob's digest and size verified; a bad
  blob ends its stream with the error, so the staged layer dir is discarded;
* the blob is renamed into the store only after the unpack finished and its diff_id
  matched; an unpack failure aborts the blob too, and the copy fails with it.

A download that restarts from zero (a registry that ignored Range) drops its tap; that
layer, like any whose blob was already present, is unpacked afterwards from the stored
blob by ``LayerStore.ensure_image``.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import ManifestError
from pycontainers.distribution.layerstore import LayerStore
from pycontainers.distribution.layerstream import FeedStream
from pycontainers.distribution.manifest import ImageManifest, parse_config
from pycontainers.distribution.store import BlobTap, ContentStore


class LayerTap:
    """A ``BlobTap`` that unpacks the blob into the layer store as it is written."""

    def __init__(self, layers: LayerStore, media_type: str, diff_id: Digest, what: str) -> None:
        self._stream = FeedStream()
        self._error: BaseException | None = None
        self.path: Path | None = None
        self._thread = threading.Thread(
            target=self._run, args=(layers, media_type, diff_id, what), daemon=True
        )
        self._thread.start()

    def _run(self, layers: LayerStore, media_type: str, diff_id: Digest, what: str) -> None:
        try:
            self.path = layers.ensure(self._stream, media_type, diff_id, what=what)
        except BaseException as exc:  # reported by finish(None)
            self._error = exc
        finally:
            self._stream.close()

    @property
    def failure(self) -> BaseException | None:
        return self._error

    def feed(self, chunk: bytes) -> None:
        # The unpack may have stopped (failed, or the layer was already there); its
        # verdict comes from finish(), and the blob download must go on meanwhile.
        with contextlib.suppress(BrokenPipeError):
            self._stream.feed(chunk)

    def finish(self, error: BaseException | None) -> None:
        with contextlib.suppress(BrokenPipeError):
            self._stream.finish(error)
        self._thread.join()
        if error is None and self._error is not None:
            raise self._error


@dataclass
class UnpackDuringPull:
    """``CopyOptions.unpack`` for a pull into ``store``: taps for layers not unpacked yet."""

    store: ContentStore
    layers: LayerStore

    def plan(self, manifest: ImageManifest, label: str) -> dict[Digest, tuple[str, Digest]]:
        """Layer blob digest -> (media type, diff_id), read from the config in the store."""
        raw = self.store.read_blob(manifest.config.digest)
        manifest.config.digest.verify_bytes(raw, what=f"{label}: config")
        config = parse_config(raw, what=f"{label}: config")
        if len(config.diff_ids) != len(manifest.layers):
            raise ManifestError(
                f"{label}: config lists {len(config.diff_ids)} diff_ids "
                f"for {len(manifest.layers)} layers"
            )
        return {
            desc.digest: (desc.media_type, diff_id)
            for desc, diff_id in zip(manifest.layers, config.diff_ids, strict=True)
            if not self.layers.has(diff_id)
        }

    def tap(self, media_type: str, diff_id: Digest, what: str) -> BlobTap:
        return LayerTap(self.layers, media_type, diff_id, what)
