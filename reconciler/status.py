"""The status of the last reconcile, persisted under the runroot for ``pycontainers status``.

``build_status`` is pure: desired state, plan, what runs after the apply, the apply's
outcomes and the previous status (for the event history) in, a JSON document out. It
answers the operator's questions per container (desired vs actual, image and digest,
unit state, restarts, since when, last error and why, source file and revision) and says
why nothing happened when nothing did. ``summary`` is the daemon's STATUS= line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pycontainers.reconciler.apply import Outcome, RetryBook
from pycontainers.reconciler.desired import DesiredState
from pycontainers.reconciler.layout import write_atomic
from pycontainers.reconciler.observe import Observed
from pycontainers.reconciler.plan import ActionKind, Plan
from pycontainers.units.model import unit_name

MAX_EVENTS = 10
USEC = 1_000_000


def _iso(seconds: float | None) -> str | None:
    if not seconds:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def short_revision(revision: str) -> str:
    _kind, _, value = revision.partition(":")
    return value[:12] if value else revision[:12]


def _event_text(outcome: Outcome) -> str:
    if not outcome.ok:
        return f"{outcome.kind} failed: {outcome.error}"
    if outcome.kind == ActionKind.START or "is gone" in outcome.reason:
        return f"repaired ({outcome.reason}): started again"
    return f"{outcome.kind}: {outcome.reason}"


def build_status(
    *,
    desired: DesiredState,
    plan: Plan,
    observed: Observed,
    outcomes: Sequence[Outcome],
    retries: RetryBook,
    previous: Mapping[str, Any] | None,
    source: str,
    source_error: str | None = None,
    suspended_all: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    old = {c["name"]: c for c in (previous or {}).get("containers", [])}
    by_outcome = {o.name: o for o in outcomes}
    actions = plan.by_name()
    names = sorted(set(desired.containers) | set(desired.held) | set(observed.actual.containers))
    containers = []
    for name in names:
        want = desired.containers.get(name)
        have = observed.actual.containers.get(name)
        unit = observed.units.get(name)
        record = observed.records.get(name)
        action = actions.get(name)
        outcome = by_outcome.get(name)
        before = old.get(name, {})
        events = list(before.get("events", []))
        if outcome is not None and not outcome.skipped:
            events.append({"at": _iso(outcome.at), "message": _event_text(outcome)})
        events = events[-MAX_EVENTS:]
        retry = retries.entries.get(name)
        last_error = before.get("lastError")
        last_error_at = before.get("lastErrorAt")
        if outcome is not None and not outcome.ok:
            last_error = outcome.error
            if not outcome.skipped:
                last_error_at = _iso(outcome.at)
        elif outcome is not None and outcome.ok:
            last_error, last_error_at = None, None
        suspended = name in observed.actual.suspended
        held = action is not None and action.kind is ActionKind.HOLD and not suspended
        if name in desired.held or held:
            state = "held"
        elif want is not None:
            state = "present"
        else:
            state = "absent"
        image = want.document.spec.image if want else (record.image if record else None)
        repairs = int(before.get("repairs", 0))
        if outcome is not None and outcome.ok and _event_text(outcome).startswith("repaired"):
            repairs += 1
        containers.append(
            {
                "name": name,
                "unit": unit_name(name),
                "desired": state,
                "heldReason": action.reason if state == "held" and action else None,
                "action": str(action.kind) if action else None,
                "reason": action.reason if action else None,
                "image": image,
                "digest": have.image_digest if have and have.unit_exists else None,
                "activeState": unit.active_state if unit else _missing_state(action),
                "subState": unit.sub_state if unit else None,
                "result": unit.result if unit else None,
                "mainPid": unit.main_pid if unit and unit.main_pid else None,
                "restarts": unit.n_restarts if unit else 0,
                "repairs": repairs,
                "since": _iso(unit.state_change_usec / USEC) if unit else None,
                "sourceFile": (want.source_file if want else None)
                or (desired.held[name].source_file if name in desired.held else None)
                or (record.source_file if record else None),
                "revision": record.revision if record else None,
                "specHash": want.spec_hash if want else (have.applied_hash if have else None),
                "suspended": suspended,
                "lastError": last_error,
                "lastErrorAt": last_error_at,
                "retryAt": _iso(retry.next_at) if retry else None,
                "events": events,
            }
        )
    changes = [o for o in outcomes if not o.skipped]
    return {
        "updatedAt": _iso(now),
        "revision": plan.revision,
        "source": source,
        "sourceError": source_error,
        "suspendedAll": suspended_all,
        "errors": [e.as_json() | {"text": e.format()} for e in plan.errors],
        "lastReconcile": {
            "at": _iso(now),
            "counts": plan.counts(),
            "applied": len([o for o in changes if o.ok]),
            "failed": len([o for o in changes if not o.ok]),
            "note": _note(plan, outcomes, source_error, suspended_all),
        },
        "containers": containers,
        "summary": "",
    } | {"summary": summary(containers, plan.revision, len(plan.errors))}


def _note(
    plan: Plan, outcomes: Sequence[Outcome], source_error: str | None, suspended_all: bool
) -> str:
    """Why nothing happened, when nothing did."""
    if plan.changes:
        waiting = [o.name for o in outcomes if o.skipped]
        if waiting:
            return f"waiting to retry: {', '.join(waiting)}"
        return f"{len(plan.changes)} change(s) applied or attempted"
    reasons = []
    if suspended_all:
        reasons.append("reconciliation is suspended")
    if source_error:
        reasons.append(f"the source failed ({source_error}); using the last good revision")
    counts = plan.counts()
    if counts["hold"]:
        reasons.append(f"{counts['hold']} container(s) held")
    if plan.errors:
        reasons.append(f"{len(plan.errors)} spec error(s)")
    reasons.append(f"{counts['nothing']} container(s) up to date")
    return "nothing to do: " + "; ".join(reasons)


def _missing_state(action: Any) -> str:
    """No unit: a job that ran to its end, or a container that is not there (yet)."""
    if (
        action is not None
        and action.kind is ActionKind.NOTHING
        and action.reason.startswith("completed")
    ):
        return "completed"
    return "gone"


def summary(containers: Sequence[Mapping[str, Any]], revision: str, errors: int) -> str:
    """'4 containers, 3 running, 1 failed, rev 3f2a1c9' (the daemon's STATUS= line)."""
    running = sum(
        1 for c in containers if c["activeState"] in ("active", "activating", "reloading")
    )
    completed = sum(1 for c in containers if c["activeState"] == "completed")
    failed = sum(1 for c in containers if c["activeState"] == "failed" or c["lastError"])
    parts = [f"{len(containers)} containers", f"{running} running"]
    if completed:
        parts.append(f"{completed} completed")
    if failed:
        parts.append(f"{failed} failed")
    held = sum(1 for c in containers if c["desired"] == "held")
    if held:
        parts.append(f"{held} held")
    if errors:
        parts.append(f"{errors} spec errors")
    parts.append(f"rev {short_revision(revision)}")
    return ", ".join(parts)


def write_status(path: Path, status: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(status, indent=1).encode())


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def render_text(status: Mapping[str, Any]) -> str:
    rows = [("NAME", "DESIRED", "STATE", "IMAGE", "DIGEST", "RESTARTS", "SINCE", "SOURCE")]
    for c in status.get("containers", []):
        state = c["activeState"] + (f" ({c['subState']})" if c.get("subState") else "")
        if c.get("suspended"):
            state += " [suspended]"
        digest = (c.get("digest") or "-").replace("sha256:", "")[:12]
        rows.append(
            (
                c["name"],
                c["desired"],
                state,
                c.get("image") or "-",
                digest,
                f"{c.get('restarts', 0)}/{c.get('repairs', 0)}",
                (c.get("since") or "-").replace("T", " ").rstrip("Z"),
                c.get("sourceFile") or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for c in status.get("containers", []):
        if c.get("heldReason"):
            lines.append(f"{c['name']}: held: {c['heldReason']}")
        if c.get("lastError"):
            retry = f" (retry at {c['retryAt']})" if c.get("retryAt") else ""
            lines.append(f"{c['name']}: last error{retry}: {c['lastError']}")
    for error in status.get("errors", []):
        lines.append(f"error: {error['text']}")
    if status.get("sourceError"):
        lines.append(f"source error: {status['sourceError']}")
    last = status.get("lastReconcile", {})
    lines.append(
        f"last reconcile {status.get('updatedAt')} of {status.get('source')} "
        f"(rev {short_revision(str(status.get('revision', '')))}): {last.get('note', '')}"
    )
    lines.append(f"summary: {status.get('summary', '')}")
    lines.append("restarts column: systemd restarts / repairs by pycontainers")
    return "\n".join(lines) + "\n"


def render_events(status: Mapping[str, Any]) -> str:
    out = []
    for c in status.get("containers", []):
        for event in c.get("events", []):
            out.append(f"{event['at']}  {c['name']}: {event['message']}")
    return "\n".join(sorted(out)) + ("\n" if out else "")
