"""plan(): one row per situation, with the action and the reason a person reads."""

from __future__ import annotations

import pytest
from reconciler_testkit import desired_of, document, running, spec_yaml

from pycontainers.reconciler.actual import ActualContainer, ActualState
from pycontainers.reconciler.plan import ActionKind, plan

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def one(kind: str, reason: str, **spec: object) -> tuple[str, str, dict[str, object]]:
    return kind, reason, spec


BASE = desired_of({"web.yaml": spec_yaml(document("web", env={"GREETING": "hello"}))})


def applied(**spec: object) -> dict[str, object]:
    """What the actual side records after applying another version of ``web``."""
    other = desired_of({"web.yaml": spec_yaml(document("web", **spec))}).containers["web"]
    return {"applied_spec": other.normalised, "applied_hash": other.spec_hash}


@pytest.mark.parametrize(
    ("actual", "kind", "reason"),
    [
        (None, "create", "new container"),
        ({}, "nothing", "up to date (running)"),
        ({"active_state": "activating", "sub_state": "start"}, "nothing", "up to date (start)"),
        ({"active_state": "failed", "result": "exit-code"}, "start", "unit failed (exit-code)"),
        ({"active_state": "inactive", "sub_state": "dead"}, "start", "unit inactive (dead)"),
        ({"active_state": "deactivating"}, "nothing", "stopping; looked at again when it settles"),
        (
            {"unit_exists": False, "active_state": "inactive"},
            "create",
            "unit pycontainers-web.service is gone",
        ),
        (
            {"applied_hash": "f" * 64, "applied_spec": None},
            "replace",
            f"spec changed (hash {'f' * 12} -> ",
        ),
        (applied(env={"GREETING": "hi", "OLD": "1"}), "replace", "env changed: GREETING, OLD"),
        (
            applied(image="127.0.0.1:5000/busybox:1.36", env={"GREETING": "hello"}),
            "replace",
            "image changed",
        ),
        (
            applied(env={"GREETING": "hello"}, resources={"memory": 1}),
            "replace",
            "resources.memory changed",
        ),
    ],
)
def test_single_container(actual: dict[str, object] | None, kind: str, reason: str) -> None:
    state = ActualState() if actual is None else ActualState.of(running(BASE, "web", **actual))
    (action,) = plan(BASE, state).actions
    assert action.kind == kind
    assert action.reason.startswith(reason)


def test_replace_lists_field_changes() -> None:
    state = ActualState.of(running(BASE, "web", **applied(env={"GREETING": "hi"})))
    (action,) = plan(BASE, state).actions
    assert [(c.path, c.old, c.new) for c in action.changes] == [
        ("spec.env.GREETING", "hi", "hello")
    ]


def test_image_digest_changed() -> None:
    desired = BASE.with_resolved_digests({"127.0.0.1:5000/busybox:latest": DIGEST_B})
    (action,) = plan(
        desired, ActualState.of(running(desired, "web", image_digest=DIGEST_A))
    ).actions
    assert action.kind is ActionKind.REPLACE
    assert action.reason == "image digest changed: sha256:aaaaaaaaaaaa -> sha256:bbbbbbbbbbbb"


@pytest.mark.parametrize(
    ("policy", "state", "result", "kind"),
    [
        ("Never", "inactive", "success", "nothing"),
        ("Never", "failed", "exit-code", "nothing"),
        ("OnFailure", "inactive", "success", "nothing"),
        ("OnFailure", "failed", "exit-code", "start"),
        ("Always", "inactive", "success", "start"),
        ("Always", "failed", "exit-code", "start"),
    ],
)
def test_one_shot_jobs_follow_their_restart_policy(
    policy: str, state: str, result: str, kind: str
) -> None:
    desired = desired_of({"job.yaml": spec_yaml(document("job", restartPolicy=policy))})
    for unit_exists in (True, False):  # a finished transient unit may be garbage-collected
        actual = ActualState.of(
            running(desired, "job", active_state=state, result=result, unit_exists=unit_exists)
        )
        (action,) = plan(desired, actual).actions
        expected = "create" if kind == "start" and not unit_exists else kind
        assert action.kind == expected, (unit_exists, action)


def test_spec_removed_from_a_good_snapshot_is_removed() -> None:
    desired = desired_of({"a.yaml": spec_yaml(document("web"))})
    actual = ActualState.of(
        running(desired, "web"), ActualContainer("old", applied_hash="h", source_file="old.yaml")
    )
    assert [str(a) for a in plan(desired, actual)] == [
        "remove old: spec removed",
        "nothing web: up to date (running)",
    ]


def test_invalid_file_keeps_its_containers_as_they_last_were() -> None:
    good = desired_of({"a.yaml": spec_yaml(document("web")), "b.yaml": spec_yaml(document("db"))})
    actual = ActualState.of(running(good, "web", active_state="failed"), running(good, "db"))
    broken = desired_of(
        {"a.yaml": b"apiVersion: pycontainers/v1\nkind: [\n", "b.yaml": spec_yaml(document("db"))}
    )
    result = plan(broken, actual)
    assert [str(a) for a in result] == [
        "nothing db: up to date (running)",
        "hold web: a.yaml is invalid: kept as it last was",
    ]
    assert not result.changes
    assert result.errors[0].file == "a.yaml"


def test_unknown_origin_is_held_while_any_file_is_invalid() -> None:
    desired = desired_of({"a.yaml": b"\x00\x01"})
    actual = ActualState.of(ActualContainer("mystery", applied_hash="h"))
    (action,) = plan(desired, actual).actions
    assert action.kind is ActionKind.HOLD
    # ... and is removed once every file is valid again.
    clean = desired_of({"a.yaml": spec_yaml(document("web"))})
    assert plan(clean, actual).by_name()["mystery"].kind is ActionKind.REMOVE


def test_held_names_are_never_removed_even_if_they_moved_file() -> None:
    good = desired_of({"a.yaml": spec_yaml(document("web"))})
    actual = ActualState.of(running(good, "web"))
    broken = desired_of({"a.yaml": b"[", "b.yaml": spec_yaml(document("db"))}, last_good=good)
    assert plan(broken, actual).by_name()["web"].kind is ActionKind.HOLD


def test_suspended_containers_are_held() -> None:
    actual = ActualState(
        ActualState.of(running(BASE, "web", active_state="failed")).containers,
        suspended=frozenset({"web", "gone"}),
    )
    actual = ActualState(
        {**actual.containers, "gone": ActualContainer("gone", applied_hash="h")},
        suspended=actual.suspended,
    )
    assert [str(a) for a in plan(BASE, actual)] == [
        "hold web: suspended",
        "hold gone: suspended; spec removed",
    ]


def test_dependencies_come_first_removals_before_everything() -> None:
    desired = desired_of(
        {
            "stack.yaml": spec_yaml(
                document("api", dependsOn=["cache", "migrate"]),
                document("cache"),
                document("migrate", dependsOn=["cache"]),
                document("aaa-frontend", dependsOn=["api"]),
                document("zzz"),
            )
        }
    )
    actual = ActualState.of(ActualContainer("old", source_file="stack.yaml"))
    assert [(a.kind.value, a.name) for a in plan(desired, actual)] == [
        ("remove", "old"),
        ("create", "cache"),
        ("create", "migrate"),
        ("create", "api"),
        ("create", "aaa-frontend"),
        ("create", "zzz"),
    ]


def test_held_name_without_a_unit_says_it_was_not_created() -> None:
    desired = desired_of({"a.yaml": spec_yaml(document("web", dependsOn=["nosuch"]))})
    (action,) = plan(desired, ActualState()).actions
    assert str(action) == "hold web: dependsOn is invalid (not created)"
