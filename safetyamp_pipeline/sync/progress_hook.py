"""The sink engine with a progress callback, without changing the engine: ``(done, planned)`` once
the plan has passed the guard, after every write sent, and at the end.

Stop-gap until ``Reconciler`` takes a ``progress`` parameter itself (requested in requests.md);
the sinks prefer that parameter as soon as it exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from safetyamp_pipeline.core.plan import PlanItem
from safetyamp_pipeline.sync.reconcile import Reconciler
from safetyamp_pipeline.sync.report import SinkReport

Progress = Callable[[int, int], None]


class ProgressReconciler(Reconciler):
    def __init__(self, *args: Any, progress: Progress, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._progress = progress
        self._planned = 0
        self._done = 0
        send = self.applier.apply_one

        def counted(item: PlanItem, report: SinkReport, heal: Any) -> Any:
            try:
                return send(item, report, heal)
            finally:
                self._done += 1
                self._progress(min(self._done, self._planned), self._planned)

        setattr(self.applier, "apply_one", counted)  # noqa: B010 - an instance override, not a method

    def _guard(self, entity: str, items: Sequence[PlanItem], current: Mapping[str, dict]) -> None:
        super()._guard(entity, items, current)  # a blocked plan reports no progress
        self._planned = sum(1 for item in items if item.is_write)
        self._done = 0
        self._progress(0, self._planned)

    def reconcile(self, *args: Any, **kwargs: Any) -> SinkReport:
        report = super().reconcile(*args, **kwargs)
        self._progress(self._planned, self._planned)
        return report
