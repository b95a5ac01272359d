"""A progress line while Spark works: tasks done out of the active stages' total, every few seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any


class StageProgress:
    """`with StageProgress(sc, "scoring", say):` prints `scoring: 12/40 tasks` until the block ends."""

    def __init__(self, spark_context: Any, label: str, log: Callable[[str], None], every_s: float = 5.0) -> None:
        self._tracker = spark_context.statusTracker()
        self._label = label
        self._log = log
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"progress-{label}", daemon=True)
        self._started = 0.0

    def __enter__(self) -> StageProgress:
        self._started = time.perf_counter()
        self._log(f"{self._label} ...")
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self._every_s + 1)
        if kind is None:
            self._log(f"{self._label} done in {time.perf_counter() - self._started:.1f} s")

    def snapshot(self) -> tuple[int, int]:
        """(tasks completed, tasks in all) over the stages running now."""
        done = total = 0
        for stage_id in self._tracker.getActiveStageIds():
            info = self._tracker.getStageInfo(stage_id)
            if info is not None:
                done += info.numCompletedTasks
                total += info.numTasks
        return done, total

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            done, total = self.snapshot()
            if total:
                elapsed = time.perf_counter() - self._started
                self._log(f"{self._label}: {done}/{total} tasks done ({elapsed:.0f} s)")
