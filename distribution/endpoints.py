"""Open the source or destination behind a transport name (docker://, oci:, dir:, the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pycontainers.distribution.dir_transport import DirDestination, DirSource
from pycontainers.distribution.docker_transport import (
    ConnectOptions,
    DockerDestination,
    DockerSource,
    open_client,
)
from pycontainers.distribution.errors import ImageNotKnown, ReferenceError
from pycontainers.distribution.layout_transport import (
    LayoutDestination,
    LayoutSource,
    oci_destination,
    oci_source,
)
from pycontainers.distribution.reference import ImageRef
from pycontainers.distribution.store import ContentStore
from pycontainers.distribution.transports import (
    DirName,
    DockerName,
    ImageDestination,
    ImageSource,
    OciName,
    StoreName,
    TransportName,
)


@dataclass
class Endpoints:
    """What opening a transport needs: the store's root and how to reach registries."""

    store_root: Path
    connect: ConnectOptions = field(default_factory=ConnectOptions)

    @property
    def store(self) -> ContentStore:
        return ContentStore(self.store_root)

    def store_name(self, text: str) -> str | None:
        """The store's name for ``text`` (short names via registries.conf), if present."""
        store = self.store
        if not store.exists():
            return None
        names = {image.name for image in store.images()}
        ref = ImageRef.parse(text)
        for candidate in [ref, *self.connect.registries.candidates(text)]:
            if str(candidate) in names:
                return str(candidate)
        return None

    async def source(self, name: TransportName) -> ImageSource:
        if isinstance(name, DockerName):
            return DockerSource(name, open_client(name.ref, self.connect))
        if isinstance(name, OciName):
            return oci_source(name)
        if isinstance(name, DirName):
            return DirSource(name)
        found = self.store_name(name.text)
        if found is None:
            raise ImageNotKnown(f"image {name.text!r} is not in the store at {self.store_root}")
        return LayoutSource(StoreName(found, root=self.store_root), self.store, found)

    async def destination(self, name: TransportName) -> ImageDestination:
        if isinstance(name, DockerName):
            return DockerDestination(name, open_client(name.ref, self.connect))
        if isinstance(name, OciName):
            return await oci_destination(name)
        if isinstance(name, DirName):
            return DirDestination(name)
        if not isinstance(name, StoreName):
            raise ReferenceError(f"unknown transport for {name}")
        ref = ImageRef.parse(name.text)
        return await LayoutDestination(name, self.store, str(ref)).open()
