"""Render a ``Plan`` for people (like ``terraform plan``) and for tools (JSON)."""

from __future__ import annotations

import json
from typing import Any

from pycontainers.reconciler.actual import unit_name
from pycontainers.reconciler.plan import ActionKind, Plan

_SYMBOL = {
    ActionKind.CREATE: "+",
    ActionKind.REPLACE: "~",
    ActionKind.START: ">",
    ActionKind.REMOVE: "-",
    ActionKind.HOLD: "!",
    ActionKind.NOTHING: " ",
}


def render_text(plan: Plan, *, show_unchanged: bool = False) -> str:
    counts = plan.counts()
    lines = [
        f"plan for {plan.revision}: {counts['create']} to create, {counts['replace']} to "
        f"replace, {counts['start']} to start, {counts['remove']} to remove, "
        f"{counts['hold']} held, {counts['nothing']} unchanged"
    ]
    width = max((len(a.name) for a in plan.actions), default=0)
    body: list[str] = []
    for action in plan.actions:
        if action.kind is ActionKind.NOTHING and not show_unchanged:
            continue
        body.append(
            f"  {_SYMBOL[action.kind]} {action.kind.value:<7} {action.name:<{width}}  "
            f"{action.reason}"
        )
        for change in action.changes:
            if change.old is not None:
                body.append(f"      - {change.path}: {_value(change.old)}")
            if change.new is not None:
                body.append(f"      + {change.path}: {_value(change.new)}")
    if body:
        lines.append("")
        lines.extend(body)
    elif not plan.errors:
        lines.append("no changes: every container is up to date")
    if plan.errors:
        lines.append("")
        lines.append(f"{len(plan.errors)} error(s):")
        lines.extend(f"  {error.format()}" for error in plan.errors)
    return "\n".join(lines) + "\n"


def render_json(plan: Plan) -> str:
    doc: dict[str, Any] = {
        "revision": plan.revision,
        "summary": plan.counts(),
        "actions": [
            {
                "action": action.kind.value,
                "name": action.name,
                "unit": unit_name(action.name),
                "reason": action.reason,
                "specHash": action.container.spec_hash if action.container else None,
                "sourceFile": action.container.source_file if action.container else None,
                "changes": [{"path": c.path, "old": c.old, "new": c.new} for c in action.changes],
            }
            for action in plan.actions
        ],
        "errors": [error.as_json() for error in plan.errors],
    }
    return json.dumps(doc, indent=2) + "\n"


def _value(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
