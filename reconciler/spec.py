"""The spec format: pydantic models of one ``Container`` document (the YAML contract).

Models are strict (no silent coercion: ``readOnly: "yes"`` is an error), frozen, and forbid
unknown fields; the loader turns pydantic's errors into ``file:line:column`` messages and
suggests the nearest valid field name. Every field that accepts several spellings
("512Mi"/536870912, "TERM"/15) is normalised here, so the content hash of a spec depends on
what it means, not how it is written. docs/spec.md documents every field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from pycontainers.distribution.errors import ReferenceError as ImageReferenceError
from pycontainers.distribution.reference import ImageRef
from pycontainers.reconciler.quantities import (
    parse_capability,
    parse_cpus,
    parse_duration,
    parse_memory,
    parse_signal,
)

API_VERSION = "pycontainers/v1"
KIND = "Container"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$"
)
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_ENV_NAME = re.compile(r"^[^=\x00]+$")
_USER = re.compile(r"^([0-9]+|[a-z_][a-z0-9_.-]{0,31}\$?)$")
_SYSCTL_KEY = re.compile(r"^[a-z0-9_]+([./][a-z0-9_-]+)+$")
# Sysctls that are namespaced (so a container may set them for itself), as runc and
# Kubernetes allow them: IPC namespace keys and net.* (network namespace).
_IPC_SYSCTLS = {
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
}


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            f"invalid name {value!r}: use at most 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"path {value!r} must be absolute")
    if "\x00" in value:
        raise ValueError("path contains a NUL byte")
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"path {value!r} must not contain '..'")
    return "/" + "/".join(parts)


def _image(value: str) -> str:
    try:
        ImageRef.parse(value)
    except ImageReferenceError as exc:
        raise ValueError(str(exc)) from exc
    return value


def _text_value(value: object) -> object:
    """Numbers become strings (PORT: 8080); booleans do not (YAML 1.1 reads ``no`` as false)."""
    if isinstance(value, bool):
        text = str(value).lower()
        raise ValueError(f'{text} is a boolean here: quote it ("{text}")')
    if isinstance(value, int | float):
        return str(value)
    return value


def _user(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a user or group name or a numeric id")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("numeric id must not be negative")
        return str(value)
    if isinstance(value, str) and not _USER.match(value):
        raise ValueError(f"invalid user or group {value!r}")
    return value


def _label_key(value: str) -> str:
    if not _LABEL_KEY.match(value) or len(value) > 316:
        raise ValueError(f"invalid label key {value!r}")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"invalid environment variable name {value!r}")
    return value


def _hostname(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError(f"invalid hostname {value!r}")
    return value


Name = Annotated[str, AfterValidator(_dns_label)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]
Text = Annotated[str, BeforeValidator(_text_value)]
UserOrGroup = Annotated[
    str,
    BeforeValidator(_user),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]}),
]
Memory = Annotated[
    int,
    BeforeValidator(parse_memory),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?\s*([KMGTPE]i?|k)?$"},
            ],
            "description": "bytes, or a quantity such as 512Mi (1024-based) or 512M",
        }
    ),
]
Cpus = Annotated[
    float,
    BeforeValidator(parse_cpus),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": "^[0-9]+m$"}]}),
]
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}]}),
]
SignalName = Annotated[
    str,
    BeforeValidator(parse_signal),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]}),
]
Capability = Annotated[str, BeforeValidator(parse_capability)]
EnvValue = Annotated[
    str,
    BeforeValidator(_text_value),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}]}),
]


class StrictModel(BaseModel):
    """Base of every spec model: strict types, camelCase keys, unknown keys rejected."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        populate_by_name=False,
        use_attribute_docstrings=True,
    )


class Metadata(StrictModel):
    name: Name
    """DNS label; the unit becomes ``pycontainers-<name>.service``."""
    labels: dict[Annotated[str, AfterValidator(_label_key)], Text] = Field(default_factory=dict)
    """Key/value pairs for people and tools (``pycontainers status`` shows them)."""
    annotations: dict[str, Text] = Field(default_factory=dict)
    """Free-form notes; like labels, but not meant for selecting containers."""


class BindMount(StrictModel):
    type: Literal["bind"]
    source: AbsolutePath
    """Host path; it must exist when the container starts."""
    target: AbsolutePath
    """Path inside the container."""
    read_only: bool = False


class VolumeMount(StrictModel):
    type: Literal["volume"]
    source: Name
    """Volume name; the data lives under the storage root and outlives the container."""
    target: AbsolutePath
    read_only: bool = False


class TmpfsMount(StrictModel):
    type: Literal["tmpfs"]
    target: AbsolutePath
    size: Memory | None = None
    """Size limit; the kernel default (half of RAM) when absent."""
    mode: int | None = Field(default=None, ge=0, le=0o7777)
    """Permission bits of the mount's root, e.g. 0o1777 (YAML: 01777)."""
    read_only: bool = False


Mount = Annotated[BindMount | VolumeMount | TmpfsMount, Field(discriminator="type")]


class Resources(StrictModel):
    memory: Memory | None = None
    """Hard memory limit (systemd MemoryMax, cgroup memory.max)."""
    cpus: Cpus | None = None
    """CPU time limit in CPUs (systemd CPUQuota: 0.5 = 50%)."""
    pids: int | None = Field(default=None, ge=1)
    """Maximum number of tasks (systemd TasksMax, cgroup pids.max)."""


class Capabilities(StrictModel):
    add: list[Capability] = Field(default_factory=list)
    drop: list[Capability] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_overlap(self) -> Capabilities:
        both = sorted(set(self.add) & set(self.drop) - {"ALL"})
        if both:
            raise ValueError(f"capabilities both added and dropped: {', '.join(both)}")
        return self


class Signature(StrictModel):
    """Pin the key that must have signed the image (cosign/sigstore signature)."""

    public_key: str | None = None
    """PEM-encoded public key, inline."""
    public_key_file: AbsolutePath | None = None
    """Path of a PEM-encoded public key on the host."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Signature:
        if (self.public_key is None) == (self.public_key_file is None):
            raise ValueError("set exactly one of publicKey and publicKeyFile")
        if self.public_key is not None:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            try:
                load_pem_public_key(self.public_key.encode())
            except (ValueError, TypeError) as exc:
                raise ValueError(f"publicKey is not a PEM public key: {exc}") from exc
        return self


class ContainerSpec(StrictModel):
    image: Annotated[str, AfterValidator(_image)]
    """Image reference: name with a tag, a ``@sha256:`` digest, or both."""
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    command: list[str] | None = None
    """Replaces the image ENTRYPOINT."""
    args: list[str] | None = None
    """Replaces the image CMD."""
    env: dict[Annotated[str, AfterValidator(_env_name)], EnvValue] = Field(default_factory=dict)
    env_files: list[AbsolutePath] = Field(default_factory=list)
    """Host files of KEY=value lines, read when the container is created; ``env`` wins."""
    working_dir: AbsolutePath | None = None
    user: UserOrGroup | None = None
    group: UserOrGroup | None = None
    hostname: Annotated[str, AfterValidator(_hostname)] | None = None
    mounts: list[Mount] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    restart_policy: Literal["Always", "OnFailure", "Never"] = "Always"
    stop_signal: SignalName = "SIGTERM"
    stop_timeout: Duration = 10.0
    """Seconds between the stop signal and SIGKILL."""
    read_only_root_filesystem: bool = False
    capabilities: Capabilities = Field(default_factory=Capabilities)
    no_new_privileges: bool = False
    network: Literal["host", "none"] = "host"
    """``host`` shares the host's network; ``none`` gives a loopback-only namespace."""
    sysctls: dict[str, Text] = Field(default_factory=dict)
    """Namespaced kernel parameters (IPC keys, fs.mqueue.*, net.* with network: none)."""
    depends_on: list[Name] = Field(default_factory=list)
    """Containers to start before this one (systemd After= and Wants=)."""
    signature: Signature | None = None

    @field_validator("mounts")
    @classmethod
    def _distinct_targets(cls, mounts: list[Mount]) -> list[Mount]:
        targets: set[str] = set()
        for mount in mounts:
            if mount.target == "/":
                raise ValueError("a mount cannot target /")
            if mount.target in targets:
                raise ValueError(f"two mounts target {mount.target}")
            targets.add(mount.target)
        return mounts

    @field_validator("depends_on")
    @classmethod
    def _distinct_dependencies(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("a name is listed twice")
        return names

    @field_validator("sysctls")
    @classmethod
    def _namespaced_sysctls(cls, sysctls: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for key in sysctls:
            if not _SYSCTL_KEY.match(key):
                raise ValueError(f"invalid sysctl name {key!r}")
            if key.startswith("net."):
                if info.data.get("network", "host") == "host":
                    raise ValueError(
                        f"sysctl {key} would change the host's network: "
                        "net.* sysctls need network: none"
                    )
            elif key not in _IPC_SYSCTLS and not key.startswith("fs.mqueue."):
                raise ValueError(f"sysctl {key} is not namespaced; a container cannot set it")
        return sysctls


class ContainerDocument(StrictModel):
    """One YAML document: the Kubernetes-style envelope around a container spec."""

    api_version: Literal["pycontainers/v1"]
    kind: Literal["Container"]
    metadata: Metadata
    spec: ContainerSpec

    @model_validator(mode="after")
    def _not_self_dependent(self) -> ContainerDocument:
        if self.metadata.name in self.spec.depends_on:
            raise ValueError(f"{self.metadata.name} depends on itself")
        return self


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one document, for editors (yaml-language-server)."""
    schema = ContainerDocument.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://pycontainers.invalid/schema/pycontainers-v1.json"
    schema["title"] = "pycontainers Container (pycontainers/v1)"
    return schema
