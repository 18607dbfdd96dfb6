"""Progress of long writes: a line at least every 30 s or every 5 %, with rate and ETA."""

from __future__ import annotations

import io

import pytest

from safetyamp_pipeline.sync.progress import ProgressReporter, ProgressUpdate, format_duration, listening


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, fmt: str, *args) -> None:
        self.lines.append(fmt % args)


def test_a_line_every_5_percent_when_writes_are_fast():
    clock, log = FakeClock(), Lines()
    report = ProgressReporter("safetyamp/users", log, limit_per_second=100.0, clock=clock)
    for done in range(0, 201):
        report(done, 200)
        clock.now += 0.5
    # start, every 10 writes (5 % of 200), end — never more often
    assert len(log.lines) == 21
    assert log.lines[0] == "safetyamp/users: 0/200 writes (0%), ETA 2s"
    assert log.lines[1] == "safetyamp/users: 10/200 writes (5%), 2.00 writes/s, ETA 1m 35s"
    assert log.lines[-1] == "safetyamp/users: done: 200/200 writes (100%), 2.00 writes/s"


def test_a_line_every_30_seconds_when_writes_are_slow():
    clock, log = FakeClock(), Lines()
    report = ProgressReporter("safetyamp/users", log, limit_per_second=1.0, clock=clock)
    report(0, 20_000)
    assert log.lines == ["safetyamp/users: 0/20000 writes (0%), ETA 5h 33m"]  # from the rate limit alone
    for done in range(1, 121):  # one write per second: 5 % would be 1,000 writes
        clock.now += 1.0
        report(done, 20_000)
    assert [line.split(":")[1].split()[0] for line in log.lines] == ["0/20000", "30/20000", "60/20000", "90/20000", "120/20000"]
    assert log.lines[1].endswith("(0%), 1.00 writes/s, ETA 5h 32m")


def test_eta_uses_the_rate_limit_when_the_run_is_faster_so_far():
    clock, log = FakeClock(), Lines()
    report = ProgressReporter("safetyamp/sites", log, limit_per_second=1.0, clock=clock)
    report(0, 100)
    clock.now += 1.0
    report(10, 100)  # a burst of 10/s (the limiter's bucket) is not the sustained rate
    assert log.lines[-1] == "safetyamp/sites: 10/100 writes (10%), 10.00 writes/s, ETA 1m 30s"


def test_nothing_planned_logs_nothing_and_listeners_get_every_update():
    clock, log = FakeClock(), Lines()
    seen: list[ProgressUpdate] = []
    with listening(seen.append):
        ProgressReporter("safetyamp/titles", log, clock=clock)(0, 0)
        report = ProgressReporter("safetyamp/sites", log, clock=clock)
        for done in range(4):
            clock.now += 1
            report(done, 3)
        report(3, 3)  # after the end: ignored
    report2 = ProgressReporter("safetyamp/assets", log, clock=clock)
    report2(0, 1)
    assert [(u.label, u.done, u.finished) for u in seen] == [
        ("safetyamp/sites", 0, False), ("safetyamp/sites", 1, False), ("safetyamp/sites", 2, False), ("safetyamp/sites", 3, True)]
    assert log.lines[-1] == "safetyamp/assets: 0/1 writes (0%)"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.6, "1m 00s"), (3599, "59m 59s"), (20_000, "5h 33m")])
def test_durations(seconds, text):
    assert format_duration(seconds) == text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_make_sync_draws_a_bar_on_a_terminal_and_nothing_elsewhere():
    from safetyamp_pipeline.sync.headless import progress_display

    clock, log = FakeClock(), Lines()
    terminal, pipe = Terminal(), io.StringIO()
    with progress_display(terminal):
        report = ProgressReporter("safetyamp/sites", log, clock=clock)
        for done in range(4):
            clock.now += 1
            report(done, 3)
    assert "safetyamp/sites" in terminal.getvalue() and "3/3" in terminal.getvalue()
    with progress_display(pipe):
        ProgressReporter("safetyamp/users", log, clock=clock)(0, 5)
    assert pipe.getvalue() == ""  # plain log lines only
    assert log.lines[-1] == "safetyamp/users: 0/5 writes (0%)"


def test_a_real_sync_logs_progress_lines_per_sink(synced):
    import re

    logs = synced.run.instance.all_logs(synced.first.run_id)
    pattern = re.compile(r"^safetyamp/users: (done: )?(\d+)/(\d+) writes")
    lines = [m for m in (pattern.match(e.user_message) for e in logs) if m]
    planned = synced.first.sinks["users"]["planned_create"] + synced.first.sinks["users"]["planned_update"] \
        + synced.first.sinks["users"]["planned_deactivate"]
    assert planned > 20 and lines
    assert {int(m.group(3)) for m in lines} == {planned}
    assert lines[0].group(2) == "0" and lines[-1].group(1) == "done: " and int(lines[-1].group(2)) == planned
    done = [int(m.group(2)) for m in lines]
    step = max(1, planned // 20)
    assert done == sorted(done) and set(range(0, planned, step)) <= set(done)  # start, every 5 %, end
