"""Properties of plan(): applying a plan converges, it never prunes what it must hold,
it respects dependsOn, and it is deterministic."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reconciler_testkit import desired_of, document, spec_yaml

from pycontainers.reconciler.actual import ActualContainer, ActualState
from pycontainers.reconciler.desired import DesiredState
from pycontainers.reconciler.plan import ActionKind, Plan, plan

NAMES = ["a", "b", "c", "d", "e", "f"]
FILES = ["one.yaml", "two.yaml", "three.yaml"]
STATES = [
    ("active", "running", "success"),
    ("activating", "start", "success"),
    ("deactivating", "stop-sigterm", "success"),
    ("inactive", "dead", "success"),
    ("failed", "failed", "exit-code"),
]


@st.composite
def desired_states(draw: st.DrawFn) -> DesiredState:
    files: dict[str, bytes] = {}
    for file in FILES:
        names = draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True))
        if not names:
            continue
        if draw(st.integers(0, 5)) == 0:
            files[file] = b"apiVersion: [broken"
            continue
        docs: list[dict[str, Any]] = []
        for name in names:
            docs.append(
                document(
                    name,
                    env={"V": draw(st.sampled_from(["1", "2"]))},
                    restartPolicy=draw(st.sampled_from(["Always", "OnFailure", "Never"])),
                    dependsOn=draw(
                        st.lists(st.sampled_from([*NAMES, "ghost"]), max_size=2, unique=True).map(
                            lambda deps, n=name: [d for d in deps if d != n]
                        )
                    ),
                )
            )
        files[file] = spec_yaml(*docs)
    return desired_of(files)


@st.composite
def actual_states(draw: st.DrawFn) -> ActualState:
    containers = []
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True)):
        active, sub, result = draw(st.sampled_from(STATES))
        containers.append(
            ActualContainer(
                name,
                unit_exists=draw(st.booleans()),
                active_state=active,
                sub_state=sub,
                result=result,
                applied_hash=draw(st.sampled_from([None, "stale"])),
                source_file=draw(st.sampled_from([None, *FILES])),
            )
        )
    suspended = draw(st.frozensets(st.sampled_from(NAMES), max_size=1))
    return ActualState.of(*containers, suspended=suspended)


def simulate(result: Plan, actual: ActualState) -> ActualState:
    """What a perfect apply would leave behind."""
    containers = dict(actual.containers)
    for action in result:
        if action.kind in (ActionKind.CREATE, ActionKind.REPLACE, ActionKind.START):
            assert action.container is not None
            want = action.container
            containers[action.name] = ActualContainer(
                action.name,
                applied_hash=want.spec_hash,
                image_digest=want.image_digest,
                source_file=want.source_file,
                applied_spec=want.normalised,
            )
        elif action.kind is ActionKind.REMOVE:
            del containers[action.name]
    return replace(actual, containers=containers)


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(desired_states(), actual_states())
def test_applying_the_plan_converges_in_one_step(
    desired: DesiredState, actual: ActualState
) -> None:
    first = plan(desired, actual)
    second = plan(desired, simulate(first, actual))
    assert second.changes == (), [str(a) for a in second.changes]


@SETTINGS
@given(desired_states(), actual_states())
def test_plan_is_deterministic_and_covers_every_name_once(
    desired: DesiredState, actual: ActualState
) -> None:
    result = plan(desired, actual)
    assert result == plan(desired, actual)
    names = [a.name for a in result]
    assert len(names) == len(set(names))
    assert set(names) == set(desired.containers) | set(desired.held) | set(actual.containers)


@SETTINGS
@given(desired_states(), actual_states())
def test_only_validly_absent_names_are_removed(desired: DesiredState, actual: ActualState) -> None:
    for action in plan(desired, actual):
        if action.kind is ActionKind.REMOVE:
            current = actual.containers[action.name]
            assert action.name not in desired.held
            assert action.name not in actual.suspended
            assert current.source_file not in desired.invalid_files
            assert current.source_file is not None or not desired.invalid_files


@SETTINGS
@given(desired_states(), actual_states())
def test_dependencies_are_ordered_before_their_dependents(
    desired: DesiredState, actual: ActualState
) -> None:
    position = {a.name: i for i, a in enumerate(plan(desired, actual))}
    for name, container in desired.containers.items():
        for dep in container.depends_on:
            if dep in desired.containers:
                assert position[dep] < position[name]


def test_a_changed_spec_converges_from_the_old_one() -> None:
    old = desired_of({"w.yaml": spec_yaml(document("w", env={"A": "1"}))})
    new = desired_of({"w.yaml": spec_yaml(document("w", env={"A": "2"}))})
    actual = simulate(plan(old, ActualState()), ActualState())
    step = plan(new, actual)
    assert [a.kind for a in step] == [ActionKind.REPLACE]
    assert plan(new, simulate(step, actual)).changes == ()
