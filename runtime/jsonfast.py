"""JSON through CPython's C accelerators (``_json``) without importing ``json``.

``json.decoder`` compiles regular expressions at import, which pulls in ``re``, ``enum``
and friends: a few milliseconds on every container start. The C scanner and encoder
that ``json`` itself uses need none of that; this module wires them up directly. Output
is compact (no indent); the CLI's pretty-printing uses ``json`` off the start path.
"""

from __future__ import annotations

import _json


class _ScanContext:
    # the attributes _json.make_scanner reads (see Modules/_json.c scanner_new)
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.lower().replace("infinity", "inf"))


# typeshed types the context as json.JSONDecoder; any object with these attributes works
_scan = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]
_WS = " \t\n\r"


def loads(text: str | bytes) -> object:
    """Parse one JSON document; ValueError (with the position) when it is not valid."""
    if isinstance(text, bytes):
        # a BOM is tolerated as json.loads does; utf-8-sig would cost a codec import
        text = text[3:] if text.startswith(b"\xef\xbb\xbf") else text
        text = text.decode()
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
    except StopIteration as exc:
        raise ValueError(f"expecting a value at char {exc.value}") from None
    if text[end:].strip(_WS):
        raise ValueError(f"extra data at char {end}")
    return value


def _unsupported(obj: object) -> object:
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


_encode = _json.make_encoder(
    None, _unsupported, _json.encode_basestring_ascii, None, ":", ",", False, False, True
)


def dumps(obj: object) -> str:
    return "".join(_encode(obj, 0))
