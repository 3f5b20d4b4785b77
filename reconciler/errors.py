"""The reconciler's exception family, so callers can react by type instead of by message.

```
ReconcilerError
 +-- SpecError            a spec file (or one document, field or container in it) is invalid
 +-- SourceError          a source could not produce a snapshot (directory, git)
 |    +-- GitSourceError  git clone/fetch/read failed
 +-- ActualStateError     the actual state could not be read
 +-- DeployRepoError      the push-to-deploy repository could not be set up or checked
```

Messages are lower case without a trailing period and name the file, field or path that
failed; ``diagnostics()`` adds the operator's next step where there is one.
"""

from __future__ import annotations


class ReconcilerError(Exception):
    """Base of every error the reconciler raises across its boundary."""

    hint: str = ""

    def diagnostics(self) -> str:
        return f"{self}\n  hint: {self.hint}" if self.hint else str(self)


class SpecError(ReconcilerError):
    """One problem in one spec file, located as precisely as the input allows.

    Used both as an exception and as a value collected in ``DesiredState.errors``: a bad
    file is an error for that file (or that container) only, never for the whole snapshot.
    """

    def __init__(
        self,
        file: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        field: str = "",
        name: str | None = None,
    ) -> None:
        self.file = file
        self.message = message
        self.line = line
        self.column = column
        self.field = field
        self.name = name
        super().__init__(self.format())

    def format(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {what}"

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "name": self.name,
            "message": self.message,
        }

    def __repr__(self) -> str:
        return f"SpecError({self.format()!r})"


class SourceError(ReconcilerError):
    """A source could not produce a snapshot; the daemon keeps the last good one."""


class GitSourceError(SourceError):
    """A git operation failed (clone, fetch, a missing branch, an unreadable commit)."""


class ActualStateError(ReconcilerError):
    """The actual state (what units report) could not be read or parsed."""


class DeployRepoError(ReconcilerError):
    """The push-to-deploy repository could not be created or its hook failed."""
