"""Adaptive batching: concurrent ``/predict`` requests queued on the event loop and answered by one model call.

A request joins the queue (on the loop: an append and, for the first one, a timer). The queue is handed
over as one batch when it holds ``max_batch_size`` requests or its oldest has waited ``max_latency``
seconds, whichever comes first. The requests arriving while a batch runs form the next batch, which
is what makes the batching adaptive: the busier the server, the larger its batches.

Where a batch runs is chosen as for an unbatched call (vci.serve.http): on the loop while the moving
average of a whole batch (decode, batch_predict, encode) stays under ``inline_below``, else in the
server's thread pool (also for the first batch, before any is timed; always inline with ``--threads
0``), so a slow batch never holds up ``/healthz``, ``/readyz`` or ``/metrics``. A fast batch in the pool
costs more than it runs: two cross-thread wake-ups, and the loop waiting for the GIL while the pool
thread decodes and encodes. Measured with iris at 64 connections and batches of 32
(benchmarks/v2.py --batching-target): inline batches gave 1.6x the requests per second and a p99 a
third lower than batches in the pool. Each request gets its own Reply back in order
(:meth:`ModelService.call_many` decides per item). On SIGTERM :meth:`flush` hands over what is queued at
once, so queued requests are answered within the drain.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .service import Codec, Reply, moving_average
from .tracing import Trace

Answer = Callable[[Reply], None]  # called on the loop with the request's reply
Entry = tuple[bytes, str, Answer, float, Codec | None, Trace | None]  # body, id, answer, when queued, protocol, trace


class Batcher:
    """The queue of one server process; every method runs on the event loop."""

    def __init__(self, service, metrics, pool, *, max_batch_size: int, max_latency: float, inline_below: float = 0.002):
        self.service, self.metrics, self.pool = service, metrics, pool
        self.max_batch_size, self.max_latency = max_batch_size, max_latency
        self.inline_below = inline_below
        self.batch_seconds: float | None = None  # moving average of a whole batch; None until one is timed
        self.loop = asyncio.get_running_loop()
        self.queue: list[Entry] = []
        self.timer: asyncio.TimerHandle | None = None

    def submit(
        self, body: bytes, request_id: str, answer: Answer, codec: Codec | None = None, trace: Trace | None = None
    ) -> None:
        """Queue one /predict body (or a V2 infer, with its ``codec``); ``answer`` gets its Reply once its
        batch has run; ``trace`` its ``queue`` span (from now until its batch runs) and the call's."""
        self.queue.append((body, request_id, answer, time.perf_counter(), codec, trace))
        if len(self.queue) >= self.max_batch_size:
            self.flush()
        elif self.timer is None:
            self.timer = self.loop.call_later(self.max_latency, self.flush)

    def flush(self) -> None:
        """Hand everything queued over, in batches of at most max_batch_size."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        while self.queue:
            batch, self.queue = self.queue[: self.max_batch_size], self.queue[self.max_batch_size :]
            now = time.perf_counter()
            self.metrics.batched(len(batch), [now - queued for _, _, _, queued, _, _ in batch])
            if self._inline():
                self._run(batch, inline=True)
            else:
                self.pool.submit(self._run, batch)

    def _inline(self) -> bool:
        """Whether the next batch runs on the loop: with no pool, or while batches are fast on average."""
        seconds = self.batch_seconds
        return self.pool is None or (seconds is not None and seconds < self.inline_below)

    def _run(self, batch: list[Entry], inline: bool = False) -> None:
        """In a pool thread (or on the loop, ``inline``): one model call per protocol in the batch
        (/predict's JSON and V2 tensors are not mixed in one batch_predict), each reply to its own request."""
        answers, replies = [], []
        running = time.perf_counter()
        for _, _, _, queued, _, trace in batch:
            if trace is not None:
                trace.spans.append(("queue", queued, running))
        for same in (
            [entry for entry in batch if entry[4] is None],
            [entry for entry in batch if entry[4] is not None],
        ):
            if same:
                codecs = None if same[0][4] is None else [entry[4] for entry in same]
                traces = [entry[5] for entry in same]
                replies += self.service.call_many([(body, rid) for body, rid, *_ in same], codecs, traces)
                answers += [entry[2] for entry in same]
        self.batch_seconds = moving_average(self.batch_seconds, time.perf_counter() - running)
        if inline:
            _answer(answers, replies)
        else:  # one wake-up of the loop for the whole batch
            self.loop.call_soon_threadsafe(_answer, answers, replies)


def _answer(answers: list[Answer], replies: list[Reply]) -> None:
    for answer, reply in zip(answers, replies, strict=True):
        answer(reply)
