"""Lifecycle hooks (runtime-spec config.md#posix-platform-hooks): state on stdin, timeouts.

subprocess is imported only when a container has hooks: most starts have none.
"""

from __future__ import annotations

from pycontainers.runtime import jsonfast as json
from pycontainers.runtime.config import Hook
from pycontainers.runtime.errors import HookError


def run_hooks(kind: str, hooks: list[Hook], state: dict[str, object]) -> None:
    """Run each hook in order; the first failure raises HookError naming kind, index, path."""
    if not hooks:
        return
    import subprocess

    payload = json.dumps(state).encode()
    for i, hook in enumerate(hooks):
        args = hook.args or [hook.path]
        where = f"{kind}[{i}] {hook.path}"
        try:
            done = subprocess.run(
                args,
                executable=hook.path,
                env=dict(e.split("=", 1) for e in hook.env if "=" in e),
                input=payload,
                capture_output=True,
                timeout=hook.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise HookError(f"hook {where}: timed out after {hook.timeout}s") from exc
        except OSError as exc:
            raise HookError(f"hook {where}: {exc.strerror or exc}".lower()) from exc
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().replace("\n", " ")
            raise HookError(f"hook {where}: exited with status {done.returncode}: {err}")
