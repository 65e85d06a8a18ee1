"""The operator closes generators that kopf leaves suspended outermost first, so a stop logs no false error.

The generators below have the shape of kopf's watch: an outer generator yielding from inside an ``async with``
whose context manager is an async generator, left paused at ``yield`` when its consumer stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hwcap_operator.kube.asyncgen_order import AsyncGeneratorsClosedInOrder


class WatchShape:
    """An outer generator like kopf's ``infinite_watch`` and a record of what its cleanup did."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    @contextlib.asynccontextmanager
    async def block(self) -> AsyncIterator[asyncio.Future[None]]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            yield waiter
        finally:
            waiter.cancel()
            self.steps.append("block closed")

    async def events(self) -> AsyncIterator[int]:
        n = 0
        while True:
            n += 1
            yield n
            await asyncio.sleep(0)

    async def watch(self) -> AsyncIterator[int]:
        try:
            async with self.block():
                async for event in self.events():
                    yield event
        finally:
            self.steps.append("watch closed")


async def _leave_suspended(shape: WatchShape) -> AsyncIterator[int]:
    """Start the watch and stop consuming it mid-stream, keeping it alive as kopf does."""
    watch = shape.watch()
    assert await watch.__anext__() == 1
    return watch


def test_suspended_watch_is_closed_before_the_loop_shuts_down_and_nothing_is_reported() -> None:
    shape = WatchShape()
    reported: list[dict[str, Any]] = []
    kept: list[AsyncIterator[int]] = []

    async def main() -> list[str]:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        async with AsyncGeneratorsClosedInOrder():
            kept.append(await _leave_suspended(shape))
        return list(shape.steps)  # what was closed before asyncio.run's own shutdown

    steps_at_exit = asyncio.run(main())
    assert steps_at_exit == ["block closed", "watch closed"]
    assert reported == []


def test_hooks_are_chained_while_open_and_restored_after() -> None:
    async def main() -> None:
        loops_hooks = sys.get_asyncgen_hooks()
        async with AsyncGeneratorsClosedInOrder():
            assert sys.get_asyncgen_hooks().firstiter is not loops_hooks.firstiter
            assert sys.get_asyncgen_hooks().finalizer is loops_hooks.finalizer
        assert sys.get_asyncgen_hooks() == loops_hooks

    asyncio.run(main())


def test_only_generators_paused_at_a_yield_are_closed_and_dead_ones_are_forgotten() -> None:
    shape = WatchShape()

    async def main() -> None:
        guard = AsyncGeneratorsClosedInOrder()
        async with guard:
            finished = shape.events()
            await finished.__anext__()
            await finished.aclose()
            dropped = shape.events()
            await dropped.__anext__()
            del dropped
            await asyncio.sleep(0)  # asyncio's finalizer closes the dropped one
            watch = await _leave_suspended(shape)
            assert [getattr(g, "__qualname__", "") for g in guard.suspended()] == [
                "WatchShape.watch", "WatchShape.block", "WatchShape.events"]
        assert guard.suspended() == []
        with pytest.raises(StopAsyncIteration):
            await watch.__anext__()

    asyncio.run(main())


def test_why_the_order_matters_closing_the_inner_generator_first_breaks_the_outer_close() -> None:
    """The failure the operator avoids (seen in CI as a logged traceback at an operator stop). Python 3.11's
    ``athrow()`` on a closed generator returns instead of raising; when a Python fixes that, this test fails and
    the ordering may be dropped."""
    shape = WatchShape()

    async def main() -> None:
        async with AsyncGeneratorsClosedInOrder() as guard:
            watch = await _leave_suspended(shape)
            outer, block, _events = guard.suspended()
            await block.aclose()
            with pytest.raises(RuntimeError, match="didn't stop after athrow"):
                await outer.aclose()
        del watch

    asyncio.run(main())
