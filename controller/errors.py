"""Errors of the controller, one small tree. Each says what to do next.

    HuntazeCtlError                 a person can fix it; printed as one line, exit 2
    ├── SpecError                   a manifest is wrong (file:line: field: problem); no AWS call was made
    ├── ReplacementRefused          an immutable field changed; rerun with --allow-replace KIND/NAME
    └── ReconcileError              AWS refused or failed; carries the resource and whether retrying may help
        ├── TemporaryError          retry after `delay` seconds (throttling, eventual consistency)
        └── PermanentError          retrying will not help until the spec or the account changes
"""

from __future__ import annotations


class HuntazeCtlError(Exception):
    """Base: a problem a person can act on."""


class SpecError(HuntazeCtlError):
    """One or more manifest problems, each ``file:line: field: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ReplacementRefused(HuntazeCtlError):
    pass


class ReconcileError(HuntazeCtlError):
    def __init__(self, resource: str, message: str) -> None:
        self.resource = resource
        super().__init__(f"{resource}: {message}")


class TemporaryError(ReconcileError):
    def __init__(self, resource: str, message: str, delay: float = 5.0) -> None:
        self.delay = delay
        super().__init__(resource, f"{message} (will retry in {delay:.0f}s)")


class PermanentError(ReconcileError):
    pass
