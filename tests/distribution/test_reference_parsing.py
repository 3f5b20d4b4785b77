"""Image references parse and normalise as distribution/reference and containers/image do."""

from __future__ import annotations

import pytest

from pycontainers.distribution.digest import Digest
from pycontainers.distribution.errors import ReferenceError
from pycontainers.distribution.reference import ImageRef

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "expected", "short"),
    [
        ("busybox", "docker.io/library/busybox:latest", True),
        ("busybox:1.36", "docker.io/library/busybox:1.36", True),
        ("library/busybox", "docker.io/library/busybox:latest", True),
        ("user/app", "docker.io/user/app:latest", True),
        ("docker.io/busybox", "docker.io/library/busybox:latest", False),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", False),
        ("quay.io/org/sub/app:v1", "quay.io/org/sub/app:v1", False),
        ("localhost/app", "localhost/app:latest", False),
        ("localhost:5000/app:tag", "localhost:5000/app:tag", False),
        ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest", False),
        ("[::1]:5000/app", "[::1]:5000/app:latest", False),
        ("Registry/app", "Registry/app:latest", False),
        (f"busybox@sha256:{HEX}", f"docker.io/library/busybox@sha256:{HEX}", True),
        (f"r.io/a:t@sha256:{HEX}", f"r.io/a:t@sha256:{HEX}", False),
        ("a__b/c-d--e.f_g", "docker.io/a__b/c-d--e.f_g:latest", True),
    ],
)
def test_normalises(text: str, expected: str, short: bool) -> None:
    ref = ImageRef.parse(text)
    assert str(ref) == expected
    assert ref.short is short
    assert str(ImageRef.parse(str(ref))) == expected  # normal form is a fixed point


def test_parts_and_api_names() -> None:
    ref = ImageRef.parse(f"127.0.0.1:5000/a/b:t@sha256:{HEX}")
    assert ref.domain == "127.0.0.1:5000"
    assert ref.repository == "a/b"
    assert ref.tag == "t"
    assert ref.digest == Digest("sha256", HEX)
    assert ref.reference == f"sha256:{HEX}"  # the digest wins over the tag
    assert ImageRef.parse("busybox").api_host == "registry-1.docker.io"
    assert ImageRef.parse("busybox").familiar() == "busybox:latest"


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("", "empty"),
        ("Busybox", "lower case"),
        ("docker.io/Library/busybox", "lower case"),
        ("busybox:", "bad tag"),
        ("busybox:-x", "bad tag"),
        ("busybox:" + "t" * 129, "bad tag"),
        ("busybox@sha256:abc", "invalid digest"),
        ("busybox@md5:" + "a" * 32, "unsupported algorithm"),
        ("a//b", "bad repository name"),
        ("-a/b", "bad repository name"),
        ("bad_host.io:/x", "bad registry host"),
        ("docker://busybox", "transport"),
        ("bus box", "white space"),
        (HEX, "image id"),
        ("r.io/" + "a" * 300, "longer than 255"),
    ],
)
def test_invalid_references_say_why(text: str, cause: str) -> None:
    with pytest.raises(ReferenceError) as info:
        ImageRef.parse(text)
    message = str(info.value)
    assert cause in message
    assert repr(text)[:20].strip("'") in message or text == ""
    assert message == message.strip() and "\n" not in message
