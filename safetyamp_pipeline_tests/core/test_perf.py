"""Pausing the collector around core work leaves no lasting trace: it is restored, nothing stays
frozen, and reference cycles made while paused are still collected."""

from __future__ import annotations

import gc
import weakref

from safetyamp_pipeline.core.perf import gc_paused


class _Node:
    def __init__(self) -> None:
        self.other: object = self


def test_collector_restored_and_cycles_made_while_paused_are_collected():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        ref = weakref.ref(_Node())  # a self-cycle: only the cyclic collector frees it
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert ref() is None


def test_a_paused_collector_stays_paused():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
