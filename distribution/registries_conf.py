"""containers-registries.conf(5): short-name search list, aliases, insecure and blocked registries.

Only the parts that change what we do are read: ``unqualified-search-registries``,
``[aliases]`` (in registries.conf and its ``.d`` drop-ins), and ``[[registry]]`` entries'
``prefix``/``location``, ``insecure`` and ``blocked``. Mirrors are not used.

Files, as containers/image reads them: ``$CONTAINERS_REGISTRIES_CONF`` if set, else
``~/.config/containers/registries.conf`` if it exists, else
``/etc/containers/registries.conf``; then ``*.conf`` in the matching ``registries.conf.d``
directories, in name order, each overriding the keys it sets.

A short name (no registry in it, e.g. ``busybox``) resolves to its alias if there is one,
else to each search registry in order; with no search list it means Docker Hub, as it
does for Docker.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pycontainers.distribution.errors import ReferenceError
from pycontainers.distribution.reference import DEFAULT_DOMAIN, ImageRef

SYSTEM_CONF = Path("/etc/containers/registries.conf")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")


@dataclass(frozen=True)
class RegistryEntry:
    """One ``[[registry]]`` table: a prefix and what to do for names under it."""

    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False


@dataclass(frozen=True)
class RegistriesConf:
    search: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    registries: tuple[RegistryEntry, ...] = ()

    @classmethod
    def load(cls, path: Path | None = None) -> RegistriesConf:
        """Read the files containers/image would read; missing files mean defaults."""
        main, dropins = _conf_files(path)
        search: tuple[str, ...] = ()
        aliases: dict[str, str] = {}
        registries: dict[str, RegistryEntry] = {}
        for file in [main, *dropins]:
            if file is None or not file.is_file():
                continue
            try:
                doc = tomllib.loads(file.read_text())
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise ReferenceError(f"{file}: invalid registries.conf ({exc})") from exc
            if "unqualified-search-registries" in doc:
                value = doc["unqualified-search-registries"]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ReferenceError(
                        f"{file}: unqualified-search-registries must be a list of strings"
                    )
                search = tuple(value)
            table = doc.get("aliases", {})
            if isinstance(table, dict):
                aliases.update({k: v for k, v in table.items() if isinstance(v, str)})
            for reg in doc.get("registry", []) or []:
                if not isinstance(reg, dict):
                    continue
                location = str(reg.get("location", ""))
                prefix = str(reg.get("prefix", "") or location)
                if not prefix:
                    continue
                registries[prefix] = RegistryEntry(
                    prefix,
                    location or prefix,
                    bool(reg.get("insecure", False)),
                    bool(reg.get("blocked", False)),
                )
        return cls(search, aliases, tuple(registries.values()))

    def entry_for(self, name: str) -> RegistryEntry | None:
        """The ``[[registry]]`` whose prefix matches ``name`` longest, if any."""
        best: RegistryEntry | None = None
        for entry in self.registries:
            p = entry.prefix
            if (name == p or name.startswith(p + "/") or name.startswith(p + ":")) and (
                best is None or len(p) > len(best.prefix)
            ):
                best = entry
        return best

    def is_insecure(self, host: str) -> bool:
        entry = self.entry_for(host)
        return entry is not None and entry.insecure

    def is_blocked(self, name: str) -> bool:
        entry = self.entry_for(name)
        return entry is not None and entry.blocked

    def candidates(self, text: str) -> list[ImageRef]:
        """The fully qualified references a user's ``text`` may mean, in the order to try."""
        ref = ImageRef.parse(text)
        if not ref.short:
            return [ref]
        given = _given_name(text)
        alias = self.aliases.get(given)
        if alias is not None:
            target = ImageRef.parse(alias)
            return [ImageRef(target.domain, target.path, ref.tag, ref.digest)]
        registries: Sequence[str] = self.search or (DEFAULT_DOMAIN,)
        return [ref.with_domain(reg, given) for reg in registries]


def is_loopback(host: str) -> bool:
    """Loopback registries may use plain HTTP without being marked insecure."""
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return bare in LOOPBACK_HOSTS or bare.startswith("127.")


def _given_name(text: str) -> str:
    name = text.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


def _conf_files(path: Path | None) -> tuple[Path | None, list[Path]]:
    if path is not None:
        main = path
    elif os.environ.get("CONTAINERS_REGISTRIES_CONF"):
        main = Path(os.environ["CONTAINERS_REGISTRIES_CONF"])
    else:
        user = Path(os.path.expanduser("~/.config/containers/registries.conf"))
        main = user if user.is_file() else SYSTEM_CONF
    dropin_dir = main.with_name(main.name + ".d")
    dropins = sorted(dropin_dir.glob("*.conf")) if dropin_dir.is_dir() else []
    return main, dropins
