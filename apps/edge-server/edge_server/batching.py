"""Micro-batching: concurrent requests share one runtime call, each waiting at most ``max_wait_ms``."""

from __future__ import annotations

import asyncio
from typing import Callable

import numpy as np


class MicroBatcher:
    """One worker task drains a queue into batches of at most ``max_batch`` samples.

    A batch closes when it is full or ``max_wait_ms`` after its first request arrived, then runs
    in a worker thread so the event loop keeps accepting requests. ``max_batch=1`` turns
    batching off (each request runs alone, still one at a time).
    """

    def __init__(self, run: Callable[[np.ndarray], tuple[np.ndarray, float]], max_batch: int = 1,
                 max_wait_ms: float = 2.0, on_batch: Callable[[int, float], None] | None = None):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_ms >= 0")
        self._run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1e3
        self._on_batch = on_batch
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name="edge-server-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def submit(self, x: np.ndarray) -> np.ndarray:
        """Queue ``x`` (N, C, H, W); returns its N rows of logits."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((x, future))
        return await future

    async def _collect(self) -> list:
        loop = asyncio.get_running_loop()
        items = [await self._queue.get()]
        size, deadline = len(items[0][0]), loop.time() + self.max_wait
        while size < self.max_batch:
            remaining = deadline - loop.time()
            try:
                item = self._queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(
                    self._queue.get(), remaining)
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
            items.append(item)
            size += len(item[0])
        return items

    async def _loop(self) -> None:
        while True:
            items = await self._collect()
            live = [(x, f) for x, f in items if not f.cancelled()]  # clients that went away
            if not live:
                continue
            try:
                logits, ms = await asyncio.to_thread(self._run, np.concatenate([x for x, _ in live]))
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            if self._on_batch is not None:
                self._on_batch(len(logits), ms)
            start = 0
            for x, future in live:
                if not future.done():
                    future.set_result(logits[start : start + len(x)])
                start += len(x)
