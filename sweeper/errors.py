"""Errors sweeper raises on purpose: each names where, what and how to fix it."""

from __future__ import annotations


class SweeperError(Exception):
    """Base of every error sweeper reports to the user without a traceback (exit code 2)."""


class SpecError(SweeperError):
    """A sweep file or a spec dict breaks a rule.

    The message always carries the source (file or ``<dict>``), the field path and the fix, so the
    CLI can print it as is.
    """

    def __init__(self, message: str, *, source: str = "<dict>", field: str = "", fix: str = ""):
        self.source, self.field, self.problem, self.fix = source, field, message, fix
        where = f"{source}: {field}" if field else source
        text = f"{where}: {message}"
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)


class ObjectiveError(SweeperError):
    """The objective itself is unusable (cannot be imported, or returns the wrong kind of value).

    Unlike an exception raised inside one run, which is recorded as a failed run, this stops the
    sweep: every other run would fail the same way.
    """
