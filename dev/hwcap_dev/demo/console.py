"""What the demo prints: announced steps with a live progress line, and commands shown the way a user types them.

The demo never reads stdin; a first build of the control plane takes many minutes, so a step shows that it is
alive (a spinner on a terminal, a line every 15 s otherwise) and what it is doing.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TextIO


class Step:
    """One announced step with a live elapsed-time line: a spinner on a terminal, a line every 15 s otherwise.

    A first build of the control plane takes many minutes; the line shows it is alive and what it is doing
    (``detail``), without ever waiting for input.
    """

    _FRAMES = "|/-\\"

    def __init__(self, title: str, out: TextIO) -> None:
        self.title, self.out = title, out
        self.detail = ""
        self.started = time.monotonic()
        self._done = threading.Event()
        self._tty = out.isatty()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> Step:
        self.out.write(f"==> {self.title}\n")
        self.out.flush()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self._done.set()
        self._thread.join()
        elapsed = time.monotonic() - self.started
        if self._tty:
            self.out.write("\r\033[K")
        mark = "ok" if exc_type is None else "FAILED"
        self.out.write(f"    {mark} ({elapsed:.1f}s)\n")
        self.out.flush()

    def _tick(self) -> None:
        frame = 0
        last_line = time.monotonic()
        while not self._done.wait(0.2 if self._tty else 1.0):
            elapsed = time.monotonic() - self.started
            detail = f": {self.detail}" if self.detail else ""
            if self._tty:
                self.out.write(f"\r\033[K    {self._FRAMES[frame % 4]} {elapsed:5.0f}s{detail[:100]}")
                self.out.flush()
                frame += 1
            elif time.monotonic() - last_line >= 15:
                self.out.write(f"    ... {elapsed:.0f}s{detail}\n")
                self.out.flush()
                last_line = time.monotonic()


class LineSink(io.TextIOBase):
    """A stand-in for stderr that hands each complete line to a callback (the build's progress messages)."""

    def __init__(self, on_line: Callable[[str], None], log: TextIO) -> None:
        self._on_line, self._log, self._buf = on_line, log, ""

    def write(self, text: str) -> int:
        self._log.write(text)
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if line.strip():
                self._on_line(line.strip())
        return len(text)

    def flush(self) -> None:
        self._log.flush()


def shown(path: Path) -> str:
    """A repository path as a user would type it from the checkout (relative when we run from there)."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def short(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quote(arg: str) -> str:
    """``arg`` as a shell would need it (quoted only when it must be)."""
    return arg if arg and all(c.isalnum() or c in "-_./=:,@" for c in arg) else "'" + arg.replace("'", "'\\''") + "'"
