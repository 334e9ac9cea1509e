"""hdr.serving: the micro-batcher gathers concurrent calls, keeps errors with their batch and survives callers
that go away; the worker pool's processes end with the process that forked them."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from hdr.serving import MicroBatcher


def test_concurrent_calls_share_batches_and_each_gets_its_own_result():
    batches = []

    def double(items: list[int]) -> list[int]:
        batches.append(list(items))
        time.sleep(0.01)  # a model call: requests arriving meanwhile form the next batch
        return [2 * item for item in items]

    async def main():
        batcher = MicroBatcher(double, max_size=8, max_wait=0.005)
        return await asyncio.gather(*(batcher(item) for item in range(20)))

    assert asyncio.run(main()) == [2 * item for item in range(20)]
    assert sorted(item for batch in batches for item in batch) == list(range(20))
    assert len(batches) < 20 and max(len(batch) for batch in batches) <= 8


def test_an_error_goes_to_every_call_of_its_batch_and_the_next_batch_is_served():
    async def main():
        batcher = MicroBatcher(lambda items: [1 / item for item in items], max_wait=0.005)
        failed = await asyncio.gather(batcher(1), batcher(0), return_exceptions=True)
        return failed, await batcher(4)

    failed, later = asyncio.run(main())
    assert all(isinstance(result, ZeroDivisionError) for result in failed)
    assert later == 0.25


def test_a_caller_that_goes_away_does_not_disturb_the_others():
    async def main():
        batcher = MicroBatcher(lambda items: items, max_wait=0.02)
        gone = asyncio.ensure_future(batcher("gone"))
        staying = asyncio.ensure_future(batcher("staying"))
        await asyncio.sleep(0)
        gone.cancel()
        return await staying, await batcher("next")

    assert asyncio.run(main()) == ("staying", "next")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_the_process_that_forked_them_is_killed():
    script = ("from hdr.serving import worker_pool; import os, time; pool = worker_pool(2); "
              "print(*sorted(pool.submit(os.getpid).result() for _ in range(8)), flush=True); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        workers = {int(pid) for pid in parent.stdout.readline().split()}
        assert workers and parent.pid not in workers
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]
