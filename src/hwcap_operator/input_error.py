"""The one error type for input that cannot be read at all: it names the input, the offending token and why.

Every parser (auxv bytes, cpuinfo dumps, NFD labels and objects) raises a subclass, so a caller reports any of
them the same way: one line, with the source, in a status condition, an Event, a log line or an exit code.
"""

from __future__ import annotations


class InputError(ValueError):
    """Input that cannot be interpreted; ``str()`` is ``"<source>: <problem>: '<token>'"``."""

    def __init__(self, source: str, token: str, problem: str) -> None:
        self.source = source
        self.token = token
        self.problem = problem
        super().__init__(f"{source}: {problem}" + (f": {token!r}" if token else ""))
