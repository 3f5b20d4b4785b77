"""A malformed policy is an error naming the file and the place, never "accept everything"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pycontainers.distribution import policy as pol
from pycontainers.distribution.policy import PolicyError, load_policy, parse_policy

KEY = {"type": "sigstoreSigned", "keyPath": "/etc/pki/cosign.pub"}


def _parse(doc: Any) -> pol.Policy:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    return parse_policy(text.encode(), source="/etc/test/policy.json", base_dir=Path("/etc/test"))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("", "not valid JSON"),
        ("[]", "want a JSON object"),
        ({}, "missing field 'default'"),
        ({"default": []}, "at default: want a non-empty list of requirements"),
        ({"default": [{"type": "accept"}]}, "unknown requirement type 'accept'"),
        ({"default": [{"type": "reject", "x": 1}]}, "unknown field 'x'"),
        ({"default": [{"type": "reject"}], "transport": {}}, "unknown field 'transport'"),
        ('{"default": [{"type": "reject"}], "default": []}', "duplicate key 'default'"),
        ({"default": [{"type": "sigstoreSigned"}]}, "want exactly one of keyPath"),
        (
            {"default": [{**KEY, "keyData": "eA=="}]},
            "want exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, pki, got",
        ),
        ({"default": [{"type": "sigstoreSigned", "keyPaths": []}]}, "non-empty list of strings"),
        ({"default": [{"type": "sigstoreSigned", "keyData": "%%%"}]}, "keyData: not base64"),
        ({"default": [{**KEY, "signedIdentity": {"type": "matchAll"}}]}, "unknown signedIdentity"),
        (
            {"default": [{**KEY, "signedIdentity": {"type": "exactReference"}}]},
            "missing field 'dockerReference'",
        ),
        (
            {
                "default": [
                    {**KEY, "signedIdentity": {"type": "exactReference", "dockerReference": "a/b"}}
                ]
            },
            "dockerReference must have a tag or a digest",
        ),
        (
            {
                "default": [
                    {
                        **KEY,
                        "signedIdentity": {"type": "exactRepository", "dockerRepository": "a:1"},
                    }
                ]
            },
            "dockerRepository must not have a tag or digest",
        ),
        (
            {
                "default": [
                    {
                        **KEY,
                        "signedIdentity": {
                            "type": "remapIdentity",
                            "prefix": "example.com/a",
                            "signedPrefix": "Not Valid",
                        },
                    }
                ]
            },
            "signedPrefix: invalid prefix",
        ),
        (
            {"default": [{"type": "reject"}], "transports": {"docker": {"library/busybox": KEY}}},
            "scope is not fully qualified",
        ),
        (
            {
                "default": [{"type": "reject"}],
                "transports": {"docker": {"docker.io/busybox": [KEY]}},
            },
            "write 'docker.io/library/busybox'",
        ),
        (
            {"default": [{"type": "reject"}], "transports": {"docker": {"*.example.com/x": [KEY]}}},
            "wildcard scope must look like",
        ),
        (
            {"default": [{"type": "reject"}], "transports": {"dir": {"relative/path": [KEY]}}},
            "scopes of the dir transport must be absolute paths",
        ),
    ],
)
def test_malformed_policy_is_refused(doc: Any, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        _parse(doc)
    text = str(info.value)
    assert text.startswith("policy /etc/test/policy.json")
    assert message in text


def test_error_names_the_place_in_the_document() -> None:
    doc = {"default": [{"type": "reject"}], "transports": {"docker": {"quay.io": [{"type": 1}]}}}
    with pytest.raises(PolicyError, match=r'at transports\.docker\["quay\.io"\]\[0\]'):
        _parse(doc)


def test_containers_common_default_parses() -> None:
    """What Debian's containers-common ships in /etc/containers/policy.json."""
    p = _parse(
        {
            "default": [{"type": "insecureAcceptAnything"}],
            "transports": {"docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}},
        }
    )
    assert [r.type for r in p.default] == ["insecureAcceptAnything"]


def test_relative_key_paths_resolve_next_to_the_policy() -> None:
    p = _parse({"default": [{"type": "sigstoreSigned", "keyPaths": ["k1.pub", "/abs/k2.pub"]}]})
    assert p.default[0].key_paths == (Path("/etc/test/k1.pub"), Path("/abs/k2.pub"))


def test_unsupported_requirements_parse_but_refuse() -> None:
    p = _parse(
        {
            "default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}],
            "transports": {
                "docker": {
                    "quay.io": [{"type": "sigstoreSigned", "fulcio": {"caPath": "/ca.pem"}}],
                    "ghcr.io": [{**KEY, "rekorPublicKeyPath": "/rekor.pub"}],
                }
            },
        }
    )
    assert p.default[0].unsupported == "gpg signatures (signedBy) are not supported"
    assert "fulcio" in (p.transports["docker"]["quay.io"][0].unsupported or "")
    assert "rekor" in (p.transports["docker"]["ghcr.io"][0].unsupported or "")


def test_missing_policy_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"policy .*nope\.json: cannot read"):
        load_policy(tmp_path / "nope.json")


def test_without_any_file_the_documented_default_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pol, "default_policy_path", lambda: None)
    p = load_policy(None)
    assert p.source == "built-in default policy"
    assert [r.type for r in p.default] == ["insecureAcceptAnything"]


def test_system_file_is_used_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "policy.json"
    system.write_text(json.dumps({"default": [{"type": "reject"}]}))
    monkeypatch.setattr(pol, "SYSTEM_POLICY", system)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-user-config"))
    p = load_policy(None)
    assert p.source == str(system)
    assert [r.type for r in p.default] == ["reject"]
