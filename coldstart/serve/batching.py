"""Micro-batching: single-user requests that arrive together are adapted and scored in one batched call.

`MicroBatcher` queues jobs; once the first of a batch arrives it waits at most `max_wait` seconds (or until
`max_batch` jobs are queued), then runs the whole batch in a worker thread (off the event loop) and hands each
request its own result. One batch runs at a time, so under load a batch holds what queued while the last one ran.
It waits only under load (the last batch held more than one job): a lone request on an idle server runs at once,
so batching costs a quiet server no latency.

`recommend_new_users` is the run for `/recommend`: the jobs become as few `ColdStartRecommender.recommend` calls as
they can (one per model and `exclude_seen`, each user id once). Each user's list is what serving it alone gives:
adaptation and scoring are per user (batched matmuls), its negatives come from its own id, and the top max(k) cut
to a job's k is its top k (ties go to the lower item either way).
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..recommender import ColdStartRecommender

Job = TypeVar("Job")
Result = TypeVar("Result")


class MicroBatcher(Generic[Job, Result]):
    """Collects concurrent `submit`s into batches for `run` (a list of jobs -> their results, in order).

    Attributes:
        batches: how many times `run` was called.
        jobs: how many jobs it was given in all (jobs / batches is the mean batch).
        largest: the most jobs in one batch.
    """

    def __init__(self, run: Callable[[list[Job]], list[Result]], max_wait: float = 0.005, max_batch: int = 64):
        if max_wait < 0 or max_batch < 1:
            raise ValueError(f"expected max_wait >= 0 and max_batch >= 1, found {max_wait} and {max_batch}")
        self.run, self.max_wait, self.max_batch = run, max_wait, max_batch
        self.batches = self.jobs = self.largest = self._last = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, job: Job) -> Result:
        """The job's result, computed in a batch with the jobs submitted within `max_wait` of the batch's first."""
        self._bind(asyncio.get_running_loop())
        future = self._loop.create_future()
        self._pending.append((job, future))
        self._arrived.set()
        if len(self._pending) >= self.max_batch:
            self._full.set()
        if self._worker.done():
            self._worker = self._loop.create_task(self._work())
        return await future

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Queue and worker live on one event loop: a new loop (a test's) starts them afresh."""
        if loop is not self._loop:
            self._loop, self._pending = loop, []
            self._arrived, self._full = asyncio.Event(), asyncio.Event()
            self._worker = loop.create_task(self._work())

    async def _work(self) -> None:
        while True:
            await self._arrived.wait()
            if self._last > 1 and len(self._pending) < self.max_batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.max_wait)
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            if not self._pending:
                self._arrived.clear()
            if len(self._pending) < self.max_batch:
                self._full.clear()
            await self._run(batch)

    async def _run(self, batch: list[tuple[Job, asyncio.Future]]) -> None:
        live = [(job, future) for job, future in batch if not future.done()]  # a client that left is cancelled
        if not live:
            return
        self.batches, self.jobs, self.largest = self.batches + 1, self.jobs + len(live), max(self.largest, len(live))
        self._last = len(live)
        try:
            results = await asyncio.to_thread(self.run, [job for job, _ in live])
        except Exception as exc:  # every request of the batch gets the error (the app turns it into a response)
            results = [exc] * len(live)
        for (_, future), result in zip(live, results):
            if not future.done():
                (future.set_exception if isinstance(result, Exception) else future.set_result)(result)


@dataclass(frozen=True)
class NewUser:
    """One new user to recommend for on model `rec`: its support (`items` rated `ratings`, in order) and the
    request's k and exclude_seen. Tuples, not a frame: building a frame per request cost more than its adaptation."""
    rec: ColdStartRecommender
    user_id: str
    items: tuple[str, ...] = ()
    ratings: tuple[float, ...] = ()
    k: int = 10
    exclude_seen: bool = True

    def content(self) -> tuple:
        return self.items, self.ratings


Ranked = tuple[list[str], list[float]]  # one user's top-k: item ids and scores, best first


def recommend_new_users(jobs: list[NewUser]) -> list[Ranked]:
    """Each job's top-k (item ids, scores), from one `recommend` call per group of `plan`."""
    out: list[Ranked] = [([], [])] * len(jobs)
    for members in plan(jobs):
        first = jobs[members[0]]
        users = {jobs[m].user_id: jobs[m] for m in members}  # a user id met twice has the same support (plan)
        support = pd.DataFrame({"user_id": [u for u, job in users.items() for _ in job.items],
                                "item_id": [item for job in users.values() for item in job.items],
                                "rating": np.array([r for job in users.values() for r in job.ratings], np.float64)})
        ranked = first.rec.recommend(support, k=max(jobs[m].k for m in members), exclude_seen=first.exclude_seen,
                                     user_ids=list(users))
        lists = split_by_user(ranked)
        for m in members:
            ids, scores = lists.get(jobs[m].user_id, ([], []))
            out[m] = ids[:jobs[m].k], scores[:jobs[m].k]
    return out


def split_by_user(ranked: pd.DataFrame) -> dict[str, Ranked]:
    """A ranked frame (`user_id, rank, item_id, score`, each user's rows in rank order) as user -> (ids, scores)."""
    lists: dict[str, Ranked] = {}
    for user, item, score in zip(ranked["user_id"].tolist(), ranked["item_id"].tolist(), ranked["score"].tolist()):
        ids, scores = lists.setdefault(user, ([], []))
        ids.append(item)
        scores.append(score)
    return lists


def plan(jobs: list[NewUser]) -> list[list[int]]:
    """The jobs (positions) grouped into calls: one model and one exclude_seen per call, and a user id in a call
    only once (jobs with the same id and the same support share it; the same id with another support waits for the
    next call)."""
    calls: list[tuple[tuple, dict[str, tuple], list[int]]] = []
    for pos, job in enumerate(jobs):
        key = (id(job.rec), job.exclude_seen)
        call = next((c for c in calls if c[0] == key and c[1].get(job.user_id, job.content()) == job.content()),
                    None)
        if call is None:
            call = (key, {}, [])
            calls.append(call)
        call[1][job.user_id] = job.content()
        call[2].append(pos)
    return [members for _, _, members in calls]
