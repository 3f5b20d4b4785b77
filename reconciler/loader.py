"""YAML text -> validated ``ContainerDocument``s, or errors located at ``file:line:column``.

PyYAML's composer gives a node graph with marks; the constructed Python data is validated
by pydantic, and each pydantic error location (``spec.mounts.0.bind.source``) is walked
back through the node graph to the line and column a person can jump to. Pure: takes
bytes, returns values.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import pydantic
import yaml
from pydantic import BaseModel

from pycontainers.reconciler.errors import SpecError
from pycontainers.reconciler.spec import API_VERSION, KIND, ContainerDocument

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A document whose alias expansion visits more nodes than this is refused ("billion
# laughs"); real specs have a few dozen nodes.
MAX_NODES = 20_000


@dataclass(frozen=True)
class LoadedDocument:
    """One valid document and where it came from."""

    file: str
    index: int
    """Position among the file's documents (empty documents included)."""
    document: ContainerDocument
    text: str = field(repr=False, compare=False)

    def locate(self, *loc: str | int) -> tuple[int, int]:
        """Line and column of ``loc``, for errors found after loading (duplicates, cycles).

        The node graph is composed again here instead of being kept: holding a thousand
        documents' graphs alive costs more in garbage collection than re-parsing the rare
        file that needs a location."""
        node = _nth_node(self.text, self.index)
        target, _ = _walk(node, loc)
        return target.start_mark.line + 1, target.start_mark.column + 1


@dataclass(frozen=True)
class LoadedFile:
    """Every document of one file, or the errors that make the file invalid.

    ``names`` lists every ``metadata.name`` that could be read even from invalid documents,
    so a broken file still names the containers it holds.
    """

    file: str
    documents: tuple[LoadedDocument, ...]
    errors: tuple[SpecError, ...]
    names: frozenset[str]

    @property
    def valid(self) -> bool:
        return not self.errors


def load_file(file: str, data: bytes) -> LoadedFile:
    """Parse and validate every document of one file; a single error invalidates the file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _invalid(file, f"not utf-8 text (byte {exc.start}): is this a binary file?")
    if "\x00" in text:
        return _invalid(file, "contains NUL bytes: is this a binary file?")
    try:
        nodes = list(_compose_all(text))
    except _ConversionError as exc:
        mark = exc.node.start_mark
        return _invalid(file, exc.message, line=mark.line + 1, column=mark.column + 1)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid yaml"
        if mark is None:
            return _invalid(file, f"yaml syntax error: {problem}")
        return _invalid(
            file, f"yaml syntax error: {problem}", line=mark.line + 1, column=mark.column + 1
        )
    except yaml.YAMLError as exc:
        return _invalid(file, f"yaml error: {exc}")
    documents: list[LoadedDocument] = []
    errors: list[SpecError] = []
    names: set[str] = set()
    content = [(i, n, d) for i, (n, d) in enumerate(nodes) if d is not None]
    if not content:
        return _invalid(file, "empty file: no documents (delete the file to remove containers)")
    for index, node, data_ in content:
        name = _readable_name(data_)
        if name is not None:
            names.add(name)
        loaded = _validate(file, text, index, node, data_, name, single=len(content) == 1)
        if isinstance(loaded, LoadedDocument):
            documents.append(loaded)
            names.add(loaded.document.metadata.name)
        else:
            errors.extend(loaded)
    return LoadedFile(file, tuple(documents), tuple(errors), frozenset(names))


def _invalid(
    file: str, message: str, line: int | None = None, column: int | None = None
) -> LoadedFile:
    return LoadedFile(file, (), (SpecError(file, message, line=line, column=column),), frozenset())


def _compose_all(text: str) -> Iterator[tuple[yaml.Node, Any]]:
    """(node, data) per document; data is None for an empty document.

    Data comes from ``_NodeConverter`` rather than PyYAML's Python constructor: one pass
    that also finds duplicate keys and refuses alias bombs, at about 60% of the cost.
    """
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node, _NodeConverter(loader).convert(node)
    finally:
        loader.dispose()


def _nth_node(text: str, index: int) -> yaml.Node:
    loader = _Loader(text)
    try:
        position = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if position == index:
                return node
            position += 1
    finally:
        loader.dispose()
    raise IndexError(f"no document {index}")


_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


class _ConversionError(Exception):
    def __init__(self, message: str, node: yaml.Node) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


class _NodeConverter:
    """Node graph -> plain data with the safe loader's scalar rules.

    Aliases are expanded and counted, so a "billion laughs" document stops at
    ``MAX_NODES`` instead of exhausting memory in whatever walks the data later.
    """

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.count = 0

    def convert(self, node: yaml.Node) -> Any:
        try:
            return self._convert(node)
        except RecursionError:
            raise _ConversionError("document nested too deeply", node) from None

    def _convert(self, node: yaml.Node) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _ConversionError(
                f"document too large after alias expansion (over {MAX_NODES} nodes)", node
            )
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR:
                return node.value
            return self.loader.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return [self._convert(item) for item in node.value]
        if isinstance(node, yaml.MappingNode):
            if any(key.tag == _MERGE for key, _ in node.value):
                return self.loader.construct_object(node, deep=True)  # "<<" merge keys
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._convert(key_node)
                try:
                    duplicate = key in mapping
                except TypeError:
                    raise _ConversionError("a mapping key must be a scalar", key_node) from None
                if duplicate:
                    raise _ConversionError(f"duplicate key {key!r}", key_node)
                mapping[key] = self._convert(value_node)
            return mapping
        raise _ConversionError(f"unsupported yaml node {node.tag}", node)


def _readable_name(data: Any) -> str | None:
    if isinstance(data, dict):
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            name = metadata.get("name")
            if isinstance(name, str) and name:
                return name
    return None


def _validate(
    file: str,
    text: str,
    index: int,
    node: yaml.Node,
    data: Any,
    name: str | None,
    *,
    single: bool,
) -> LoadedDocument | list[SpecError]:
    def err(message: str, *loc: str | int) -> list[SpecError]:
        return [_error_at(file, message, node, loc, name)]

    if not isinstance(data, dict):
        return err(f"a document must be a mapping, not {_kind_of(data)}")
    api_version = data.get("apiVersion")
    if api_version != API_VERSION:
        if api_version is None:
            return err(f"missing apiVersion (expected {API_VERSION})")
        return err(f"unknown apiVersion {api_version!r} (expected {API_VERSION})", "apiVersion")
    kind = data.get("kind")
    if kind != KIND:
        if kind is None:
            return err(f"missing kind (expected {KIND})")
        return err(f"unknown kind {kind!r} (expected {KIND})", "kind")
    metadata = data.get("metadata")
    if single and isinstance(metadata, dict) and "name" not in metadata:
        # As Quadlet names a unit after its file, a one-document file may omit the name.
        data = {**data, "metadata": {**metadata, "name": PurePath(file).stem}}
    elif single and metadata is None:
        data = {**data, "metadata": {"name": PurePath(file).stem}}
    try:
        document = ContainerDocument.model_validate(data)
    except pydantic.ValidationError as exc:
        return _map_errors(file, node, exc, name)
    return LoadedDocument(file, index, document, text)


def _map_errors(
    file: str, root: yaml.Node, exc: pydantic.ValidationError, name: str | None
) -> list[SpecError]:
    raw = exc.errors(include_url=False)
    suggested: set[tuple[tuple[str | int, ...], str]] = set()
    messages: list[tuple[tuple[str | int, ...], str]] = []
    for error in raw:
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            valid = _field_names(ContainerDocument, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if close:
                suggested.add((loc[:-1], close[0]))
            elif nested := _nested_match(loc[:-1], str(loc[-1]), valid):
                hint = f" (did you mean {nested!r}?)"
            messages.append((loc, f"unknown field {str(loc[-1])!r}{hint}"))
        else:
            messages.append((loc, _message(error)))
    errors: list[SpecError] = []
    for loc, message in messages:
        if message == "field required" and (loc[:-1], str(loc[-1])) in suggested:
            continue  # the misspelling's suggestion already says it
        extra = message.startswith("unknown field")
        errors.append(_error_at(file, message, root, loc, name, at_key=extra))
    return sorted(errors, key=lambda e: (e.line or 0, e.column or 0))


def _error_at(
    file: str,
    message: str,
    root: yaml.Node,
    loc: Sequence[str | int],
    name: str | None,
    *,
    at_key: bool = False,
) -> SpecError:
    """``message`` at the line and column of the deepest node ``loc`` reaches."""
    target, path = _walk(root, loc, at_key=at_key)
    mark = target.start_mark
    return SpecError(
        file, message, line=mark.line + 1, column=mark.column + 1, field=path, name=name
    )


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "field required"
    if kind == "value_error":
        text = str(error["ctx"]["error"])
    elif kind == "literal_error":
        text = f"{error['input']!r} is not one of {error['ctx']['expected']}"
        options = [o.strip(" '") for o in error["ctx"]["expected"].replace(" or ", ",").split(",")]
        close = difflib.get_close_matches(str(error["input"]), options, n=1, cutoff=0.5)
        if close:
            text += f" (did you mean {close[0]!r}?)"
    else:
        text = error["msg"]
        if not isinstance(error.get("input"), dict | list):
            text += f", got {_kind_of(error.get('input'))}"
    return text[:1].lower() + text[1:]


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _walk(
    root: yaml.Node, loc: Sequence[str | int], *, at_key: bool = False
) -> tuple[yaml.Node, str]:
    """The deepest node ``loc`` reaches, and the human path of the components that matched.

    Components with no node of their own (pydantic's union tags, ``[key]``) are skipped.
    With ``at_key`` the last component resolves to its key node (an unknown key), otherwise
    to its value; a missing key leaves the walk at the mapping that lacks it.
    """
    node = root
    path = ""
    last = len(loc) - 1
    unmatched: list[str] = []
    for position, part in enumerate(loc):
        matched = False
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    node = key if at_key and position == last else value
                    path = f"{path}.{part}" if path else part
                    matched = True
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            node = node.value[part]
            path = f"{path}[{part}]"
            matched = True
        if matched or _is_union_tag(node, part):
            unmatched = []
        elif isinstance(part, str) and not part.startswith("["):
            unmatched.append(part)
    if unmatched:  # missing keys: name them, though they have no node
        path = ".".join([path, *unmatched]) if path else ".".join(unmatched)
    return node, path


def _nested_match(parent: Sequence[str | int], key: str, siblings: list[str]) -> str | None:
    """``memory`` under spec is ``resources.memory``: look one level down."""
    for sibling in siblings:
        inner = _field_names(ContainerDocument, (*parent, sibling))
        close = difflib.get_close_matches(key, inner, n=1, cutoff=0.8)
        if close:
            return f"{sibling}.{close[0]}"
    return None


def _is_union_tag(node: yaml.Node, part: str | int) -> bool:
    if not isinstance(node, yaml.MappingNode):
        return False
    return any(k.value == "type" and getattr(v, "value", None) == part for k, v in node.value)


def _field_names(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Valid keys at ``loc``, by walking the model's annotations like pydantic walks data."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            by_alias = {f.alias or n: f.annotation for n, f in tp.model_fields.items()}
            if part not in by_alias:
                return []
            tp = by_alias[part]
            continue
        origin = typing.get_origin(tp)
        if origin is list and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        elif origin in (typing.Union, types.UnionType):
            members = [_unwrap(a) for a in typing.get_args(tp)]
            for member in members:
                if isinstance(member, type) and issubclass(member, BaseModel):
                    tag = member.model_fields.get("type")
                    if tag is not None and typing.get_args(tag.annotation) == (part,):
                        tp = member
                        break
            else:
                return []
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return tp
