"""The units part's exception family, so callers react by type instead of by message.

```
UnitError
 +-- BusUnavailable      the system or user bus cannot be reached (names which, and the fix)
 +-- UnitSpecError       a UnitSpec cannot become a unit (bad name, path, limit): nothing was sent
 +-- SystemdCallError    systemd refused a call (D-Bus error name + systemd's own text)
 |    +-- NoSuchUnit     the unit is not loaded (never started, stopped and collected)
 +-- ForeignUnit         the name belongs to a unit pycontainers did not create: never touched
 +-- JobFailed           a start/stop/restart job ended other than "done" (job result + unit reason)
 +-- WaitTimeout         a job or state change did not arrive in time
```

Messages are lower case without a trailing period and name the unit or bus; ``hint`` says
what an operator can do next (``diagnostics()`` appends it). ``retryable`` tells the
reconciler whether trying again later can help (a bus hiccup) or not (a foreign unit).
"""

from __future__ import annotations


class UnitError(Exception):
    """Base of every error the units part raises across its boundary."""

    hint: str = ""
    retryable: bool = False

    def diagnostics(self) -> str:
        return f"{self}\n  hint: {self.hint}" if self.hint else str(self)


class BusUnavailable(UnitError):
    retryable = True

    def __init__(self, scope: str, address: str, cause: str, hint: str) -> None:
        self.scope = scope
        self.address = address
        self.cause = cause
        self.hint = hint
        super().__init__(f"cannot reach the {scope} manager's bus at {address}: {cause}")


class UnitSpecError(UnitError):
    def __init__(self, container: str, field: str, cause: str) -> None:
        self.container = container
        self.field = field
        self.cause = cause
        super().__init__(f"container {container!r}: {field}: {cause}")


class SystemdCallError(UnitError):
    """systemd (or the bus) answered a call with a D-Bus error."""

    retryable = True

    def __init__(self, call: str, error_name: str, text: str) -> None:
        self.call = call
        self.error_name = error_name
        self.text = text
        super().__init__(f"{call} failed: {text} ({error_name})")


class NoSuchUnit(SystemdCallError):
    retryable = False


class ForeignUnit(UnitError):
    hint = (
        "a unit of that name exists and was not created by pycontainers; "
        "rename the container or remove the other unit"
    )

    def __init__(self, unit: str, why: str) -> None:
        self.unit = unit
        self.why = why
        super().__init__(f"refusing to touch {unit}: {why}")


class JobFailed(UnitError):
    """A job ended with a result other than ``done``; ``reason`` is the unit's own."""

    def __init__(self, unit: str, verb: str, job_result: str, reason: str) -> None:
        self.unit = unit
        self.verb = verb
        self.job_result = job_result
        self.reason = reason
        self.hint = f"see `systemctl status {unit}` and `journalctl -u {unit}`"
        super().__init__(f"{verb} of {unit} {job_result}: {reason}")


class WaitTimeout(UnitError):
    retryable = True

    def __init__(self, what: str, timeout: float) -> None:
        self.what = what
        self.timeout = timeout
        super().__init__(f"timed out after {timeout:g}s waiting for {what}")
