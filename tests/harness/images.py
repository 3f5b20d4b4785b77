"""Fixture images in an OCI layout, built by real tools (see build-images.sh)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.registry import Registry

HERE = Path(__file__).resolve().parent
TAGS = ("busybox", "busybox-arm64", "multi", "layered")


@dataclass(frozen=True)
class FixtureImages:
    """The OCI layout and what is in it. Tags: busybox, busybox-arm64, multi, layered."""

    layout: Path

    def ref(self, tag: str) -> str:
        """The skopeo/containers-transports name: ``oci:<layout>:<tag>``."""
        return f"oci:{self.layout}:{tag}"

    def index(self) -> dict[str, Any]:
        return json.loads((self.layout / "index.json").read_text())  # type: ignore[no-any-return]

    def blob(self, digest: str) -> bytes:
        algo, hexd = digest.split(":", 1)
        return (self.layout / "blobs" / algo / hexd).read_bytes()

    def descriptor(self, tag: str) -> dict[str, Any]:
        for desc in self.index()["manifests"]:
            if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
                return desc  # type: ignore[no-any-return]
        raise KeyError(tag)

    def manifest(self, tag: str) -> dict[str, Any]:
        return json.loads(self.blob(self.descriptor(tag)["digest"]))  # type: ignore[no-any-return]

    def push(self, registry: Registry, tag: str, repo: str | None = None) -> str:
        """Push ``tag`` with skopeo to ``registry`` as ``repo`` (default tag ``latest``).

        Returns the reference pushed, e.g. ``127.0.0.1:PORT/repo:latest``.
        """
        repo = repo or tag
        dest = f"{registry.host}/{repo}" if ":" in repo else f"{registry.host}/{repo}:latest"
        cmd = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]
        if tag == "multi":
            cmd.append("--all")
        if registry.mode != "plain":
            cmd.append(f"--dest-creds={registry.username}:{registry.password}")
        subprocess.run([*cmd, self.ref(tag), f"docker://{dest}"], check=True)
        return dest


def build(out: Path) -> FixtureImages:
    subprocess.run(
        ["sh", str(HERE / "build-images.sh"), str(out)], check=True, stdout=subprocess.DEVNULL
    )
    return FixtureImages(out / "oci")
