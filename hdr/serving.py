"""Serving many requests at once: worker processes for the CPU-bound work, one model call per batch of requests."""
from __future__ import annotations

import asyncio
import gc
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    """Gathers concurrent ``await batcher(item)`` calls into one ``function(items)`` call in a worker thread.

    The first item waits ``max_wait`` seconds for others to join (unless ``max_size`` already wait); items
    that arrive while ``function`` runs form the next batch. Batches run one at a time. If ``function``
    raises, every call of its batch raises that error.
    """

    def __init__(self, function: Callable[[list[Item]], Sequence[Result]], max_size: int = 64,
                 max_wait: float = 0.002):
        self.function = function
        self.max_size = max_size
        self.max_wait = max_wait
        self._queue: asyncio.Queue | None = None
        self._runner: asyncio.Task | None = None

    async def __call__(self, item: Item) -> Result:
        if self._runner is None:  # created here, in the event loop that serves the requests
            self._queue = asyncio.Queue()
            self._runner = asyncio.create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._queue.qsize() < self.max_size - 1:
                await asyncio.sleep(self.max_wait)
            while len(batch) < self.max_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            items, futures = zip(*batch)
            try:
                results = await asyncio.to_thread(self.function, list(items))
                if len(results) != len(items):
                    raise RuntimeError(f"{len(results)} results for {len(items)} items")
            except Exception as error:  # noqa: BLE001 (handed to the callers)
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
                continue
            for future, result in zip(futures, results):
                if not future.done():  # else the caller went away
                    future.set_result(result)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` processes forked from this one, started now; each ends when this process ends.

    Forking (not spawning) shares the loaded modules and does not run the main script again. Call it before a
    server starts its threads when possible: a lock another thread holds at the fork stays locked in the
    workers (the tasks meant for them use numpy, scipy and PIL, not the server's locks).
    """
    gc.freeze()  # objects that exist now are never collected, so the workers do not copy their memory pages
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_exit_with_parent)
    pool.submit(int).result()  # the fork start method starts every worker at the first task
    return pool


def _exit_with_parent() -> None:
    """A worker waits for tasks forever, even after its parent is killed; this ends it then."""
    sentinel = multiprocessing.parent_process().sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
