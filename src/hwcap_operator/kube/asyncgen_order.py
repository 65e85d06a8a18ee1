"""Close the operator's suspended async generators outermost first, before asyncio tears the loop down.

Why: when kopf stops, its watch generator (``infinite_watch``) can be left suspended at a ``yield`` inside an
``async with`` whose context manager is itself an async generator. ``asyncio.run`` then closes every live
async generator *concurrently* (``loop.shutdown_asyncgens``), in an order that depends on memory addresses.
When the inner context-manager generator happens to be closed first, the outer one's ``__aexit__`` throws into
a generator that is already closed; on Python 3.11 that ``athrow()`` returns instead of raising, ``contextlib``
reports "generator didn't stop after athrow()", and asyncio logs it as an error with a traceback at every such
stop. Closing them one at a time in the order they were first iterated closes an outer generator before the
generators it created, so each inner one is finished by its owner's own ``finally``/``__aexit__`` as written.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import weakref
from collections.abc import AsyncGenerator
from types import AsyncGeneratorType, TracebackType
from typing import Any

log = logging.getLogger("hwcap_operator.operator")

#: How long one generator's cleanup may take before it is left to asyncio's own shutdown.
CLOSE_TIMEOUT_SECONDS = 5.0


class AsyncGeneratorsClosedInOrder:
    """``async with AsyncGeneratorsClosedInOrder(): ...`` records async generators as they are first iterated
    (chaining the loop's own hook) and, on exit, closes the ones still suspended in that order."""

    def __init__(self) -> None:
        self._live: dict[int, weakref.ref[AsyncGeneratorType[Any, Any]]] = {}
        self._previous: Any = None

    def _first_iteration(self, agen: AsyncGenerator[Any, Any]) -> None:
        if isinstance(agen, AsyncGeneratorType):  # the hook is only ever called with native generators
            key = id(agen)
            # The callback drops the entry when the generator dies, before its id can be reused.
            self._live[key] = weakref.ref(agen, lambda _ref: self._live.pop(key, None))
        if self._previous.firstiter is not None:
            self._previous.firstiter(agen)

    async def __aenter__(self) -> AsyncGeneratorsClosedInOrder:
        self._previous = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._first_iteration, finalizer=self._previous.finalizer)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        sys.set_asyncgen_hooks(firstiter=self._previous.firstiter, finalizer=self._previous.finalizer)
        await self.close_suspended()

    def suspended(self) -> list[AsyncGeneratorType[Any, Any]]:
        """Generators still alive and paused at a ``yield`` (not finished, not being awaited), oldest first."""
        found = []
        for ref in list(self._live.values()):
            agen = ref()
            if agen is not None and agen.ag_frame is not None and not agen.ag_running:
                found.append(agen)
        return found

    async def close_suspended(self) -> None:
        suspended = self.suspended()
        log.debug("closing %d suspended async generators: %s", len(suspended),
                  ", ".join(getattr(agen, "__qualname__", "?") for agen in suspended))  # fmt: skip
        for agen in suspended:
            if agen.ag_frame is None:  # finished meanwhile by an outer generator's cleanup
                continue
            try:
                await asyncio.wait_for(agen.aclose(), CLOSE_TIMEOUT_SECONDS)
            except Exception:
                log.exception("closing async generator %r at shutdown failed", getattr(agen, "__qualname__", agen))
