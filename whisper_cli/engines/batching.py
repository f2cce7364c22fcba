"""Batching across jobs: several transcriptions, each on its own thread through the one
transcription path, share the model's decoding calls.

A worker that runs jobs side by side makes each job's thread a *member* of one Gatherer.
When a member asks the model to decode a window, the call waits until every member is
waiting too (or MAX_WAIT has passed); then the calls that can share a batch run as one
batched call on the Gatherer's own thread, and each member gets its own rows back. A member
whose job is canceled stops waiting at once (its pending call is dropped, a running one left
to finish for the others): a cancel never waits for a batch, and the batch never waits for a
canceled job. Nothing about a job changes but the
company its windows decode in: its options, progress, cancel and result stay its own, and a
job that leaves (done, failed, canceled) just stops taking part.

Only calls that CTranslate2 can run together are merged: the same decoding settings, and
prompts of one length with <|startoftranscript|> at one position (its rule for a batch).
The encoder is left alone: on CPU, batched encoding is no faster per window (measured on 2
cores: base int8 0.38 s a window alone, 0.41 in twos, 0.52 in fours), while batched beam
search is 2.5x faster per window. What helps the encoder there is running two windows at
once on two one-thread replicas of the model (0.32 s a window): a batching worker loads
CPU_REPLICAS replicas (engines.split_cpu), the job threads' encoder calls spread over them,
and each merged decoding call is cut into one batch per replica, run side by side. Outside a
Gatherer (the CLI, a worker with --max-batch 1) calls go straight to the model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from whisper_cli.errors import Canceled

MAX_WAIT = 0.2  # seconds a decoding call waits for members busy elsewhere (audio, writing)
# Packing: a pack waits while members keep joining (a burst of drops), up to this long.
PACK_MAX_WAIT = 1.0
SETTLE = 0.05  # seconds without a new member before the calls of all members run
# Packing: a pack settles longer, as one left out costs a pack of its own; a lone clip waits
# this much. The daemon hands a burst of 41 drops to a worker 5-30 ms apart.
PACK_SETTLE = 0.1
STOP_POLL = 0.05  # seconds between a waiting member's looks at its cancel
# --max-batch 0: jobs a worker runs side by side, by device (bench/spool_throughput.py).
MAX_BATCH_CPU = 8
MAX_BATCH_CUDA = 16
CPU_REPLICAS = 2  # model replicas of a batching worker on CPU, the cores shared out

_local = threading.local()


@dataclass(eq=False)
class _Call:
    key: tuple
    payload: Any
    run_group: Callable[[list[Any]], list[Any]]
    since: float = field(default_factory=time.monotonic)
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class Gatherer:
    """Collects the model calls of member threads and runs them together on its own thread."""

    def __init__(
        self, max_wait: float | None = None, pack: bool = False, settle: float | None = None
    ) -> None:
        self.max_wait = max_wait if max_wait is not None else PACK_MAX_WAIT if pack else MAX_WAIT
        self.settle = settle if settle is not None else PACK_SETTLE if pack else SETTLE
        self.pack = pack  # short clips of members share one window (engines/packing.py)
        self._cond = threading.Condition()
        self._members = 0
        self._joined = 0.0  # when the last member joined (time.monotonic)
        self._pending: list[_Call] = []
        self._runner: threading.Thread | None = None
        self.merged_calls = 0  # batched calls of more than one member (for tests)
        self.largest = 0
        self.dropped = 0  # calls of canceled members taken out before they ran (for tests)

    @contextmanager
    def member(self, should_stop: Callable[[], bool] | None = None) -> Iterator[None]:
        """The current thread takes part until the block ends; `should_stop` is its job's
        cancel, looked at while it waits for a batch."""
        with self._cond:
            self._members += 1
            self._joined = time.monotonic()
        _local.gatherer, _local.should_stop = self, should_stop
        try:
            yield
        finally:
            _local.gatherer = _local.should_stop = None
            with self._cond:
                self._members -= 1
                self._cond.notify_all()

    def submit(self, key: tuple, payload: Any, run_group: Callable[[list[Any]], list[Any]]):
        should_stop = getattr(_local, "should_stop", None)
        call = _Call(key, payload, run_group)
        with self._cond:
            self._pending.append(call)
            if self._runner is None:
                self._runner = threading.Thread(target=self._run, name="wt-batch", daemon=True)
                self._runner.start()
            self._cond.notify_all()
            while not call.done:
                if should_stop is not None and should_stop():
                    if call in self._pending:  # not started: its batch-mates go without it
                        self._pending.remove(call)
                        self.dropped += 1
                        self._cond.notify_all()
                    raise Canceled("transcription canceled")
                self._cond.wait(STOP_POLL if should_stop is not None else None)
        if call.error is not None:
            raise call.error
        return call.result

    def _run(self) -> None:
        """Runs the pending calls once every member waits and none has joined for `settle`
        (a member that just joined is usually the first of several: jobs arrive in bursts),
        or once the oldest has waited max_wait; ends when nothing is pending and no member
        is left."""
        with self._cond:
            while True:
                if not self._pending:
                    if self._members == 0:
                        self._runner = None
                        return
                    self._cond.wait(self.max_wait)
                    continue
                now = time.monotonic()
                waited = now - self._pending[0].since
                if waited < self.max_wait:
                    if len(self._pending) < self._members:
                        self._cond.wait(self.max_wait - waited)
                        continue
                    settling = self.settle - (now - self._joined)
                    if settling > 0:
                        self._cond.wait(min(settling, self.max_wait - waited))
                        continue
                batch, self._pending = self._pending, []
                self._cond.release()
                try:
                    self._execute(batch)
                finally:
                    self._cond.acquire()
                    self._cond.notify_all()

    def _execute(self, batch: list[_Call]) -> None:
        groups: dict[tuple, list[_Call]] = {}
        for call in batch:
            groups.setdefault(call.key, []).append(call)
        for calls in groups.values():
            if len(calls) > 1:
                self.merged_calls += 1
                self.largest = max(self.largest, len(calls))
                try:
                    results = calls[0].run_group([c.payload for c in calls])
                    for c, r in zip(calls, results, strict=True):
                        c.result = r
                except Exception:
                    # One bad call must not fail its batch-mates: each runs again alone
                    # and keeps its own result or error.
                    self._run_each(calls)
            else:
                self._run_each(calls)
            for c in calls:
                c.done = True

    @staticmethod
    def _run_each(calls: list[_Call]) -> None:
        for c in calls:
            try:
                c.result = c.run_group([c.payload])[0]
            except Exception as exc:
                c.error = exc


def default_max_batch(device: str) -> int:
    if device == "cpu":
        return MAX_BATCH_CPU
    if device in ("cuda", "auto"):
        from whisper_cli.hardware import cuda_available

        if device == "cuda" or cuda_available():
            return MAX_BATCH_CUDA
    return MAX_BATCH_CPU


def current() -> Gatherer | None:
    return getattr(_local, "gatherer", None)


class BatchingWhisper:
    """Stands in for a CTranslate2 Whisper model: `generate` calls of gathered threads run
    as one batch; everything else goes straight to the model."""

    def __init__(self, model: Any, sot_token: int) -> None:
        self._model = model
        self._sot = sot_token

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, features: Any, prompts: list[list[int]], **kwargs: Any) -> list[Any]:
        gatherer = current()
        if gatherer is None:
            return self._model.generate(features, prompts, **kwargs)
        shapes = {(len(p), p.index(self._sot) if self._sot in p else -1) for p in prompts}
        key = (
            "generate",
            id(self),
            tuple(sorted(shapes)),
            tuple(features.shape[1:]),
            repr(sorted(kwargs.items())),
        )
        if len(shapes) != 1:
            key += (id(prompts),)  # a call that cannot be batched even with itself
        return gatherer.submit(key, (features, prompts, kwargs), self._generate_group)

    def _generate_group(self, calls: list[tuple[Any, list[list[int]], dict]]) -> list[Any]:
        # One batched call per model replica (CPU replicas share the cores), side by side.
        parts = min(len(calls), max(1, getattr(self._model, "num_workers", 1)))
        if parts == 1:
            return self._generate_batch(calls)
        size = -(-len(calls) // parts)
        chunks = [calls[i : i + size] for i in range(0, len(calls), size)]
        with ThreadPoolExecutor(len(chunks)) as pool:
            return [r for rs in pool.map(self._generate_batch, chunks) for r in rs]

    def _generate_batch(self, calls: list[tuple[Any, list[list[int]], dict]]) -> list[Any]:
        if len(calls) == 1:
            features, prompts, kwargs = calls[0]
            return [self._model.generate(features, prompts, **kwargs)]
        import ctranslate2

        stacked = np.concatenate([_on_host(f) for f, _, _ in calls])
        prompts = [p for _, ps, _ in calls for p in ps]
        results = self._model.generate(
            ctranslate2.StorageView.from_array(stacked), prompts, **calls[0][2]
        )
        out, at = [], 0
        for _, ps, _ in calls:
            out.append(results[at : at + len(ps)])
            at += len(ps)
        return out


def _on_host(features: Any) -> np.ndarray:
    """An encoder output (or mel features) as a host array, to stack with others."""
    if isinstance(features, np.ndarray):
        return features
    import ctranslate2

    if getattr(features, "device", "cpu") != "cpu":
        features = features.to_device(ctranslate2.Device.cpu)
    return np.asarray(features)
