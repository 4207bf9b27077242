"""Dynamic counts that vanish from a source are written as 0 for a week, then forgotten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rexmon.absent import FORGET_AFTER, AbsentFill

T0 = 1_763_730_000.0
DAY = 86400.0


def zero(name: str) -> float | None:
    return 0.0


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        # each run: the names reported; expected: what the last run fills
        ([{"a", "b"}], []),
        ([{"a", "b"}, {"a"}], [("b", 0.0)]),
        ([{"a", "b"}, {"a"}, {"a"}], [("b", 0.0)]),
        ([{"a", "b"}, set(), set()], [("a", 0.0), ("b", 0.0)]),
        ([{"a", "b"}, {"a"}, {"a", "b"}], []),  # back again: reported, nothing to fill
        ([{"a"}, {"b"}], [("a", 0.0)]),
    ],
)
def test_what_a_run_fills(tmp_path: Path, runs: list[set[str]], expected: list[tuple[str, float]]) -> None:
    fill = AbsentFill(tmp_path)
    out: list[tuple[str, float]] = []
    for i, present in enumerate(runs):
        out = fill.fill("pool", present, zero, T0 + 60 * i)
    assert out == expected


def test_a_name_is_forgotten_a_week_after_it_vanished(tmp_path: Path) -> None:
    fill = AbsentFill(tmp_path)
    fill.fill("pool", {"jobs.alice.running"}, zero, T0)
    assert fill.fill("pool", set(), zero, T0 + 60) == [("jobs.alice.running", 0.0)]
    assert fill.fill("pool", set(), zero, T0 + 60 + FORGET_AFTER) == [("jobs.alice.running", 0.0)]
    assert fill.fill("pool", set(), zero, T0 + 61 + FORGET_AFTER) == []
    assert fill.fill("pool", set(), zero, T0 + 2 * FORGET_AFTER) == []
    # a name that comes back after being forgotten is tracked anew
    fill.fill("pool", {"jobs.alice.running"}, zero, T0 + 3 * FORGET_AFTER)
    assert fill.fill("pool", set(), zero, T0 + 3 * FORGET_AFTER + 60) == [("jobs.alice.running", 0.0)]


def test_a_restart_keeps_filling_and_keeps_the_time_it_vanished(tmp_path: Path) -> None:
    AbsentFill(tmp_path).fill("pool", {"a", "b"}, zero, T0)
    AbsentFill(tmp_path).fill("pool", {"a"}, zero, T0 + 60)  # b vanished at T0 + 60
    again = AbsentFill(tmp_path)
    assert again.fill("pool", {"a"}, zero, T0 + 2 * DAY) == [("b", 0.0)]
    assert again.fill("pool", {"a"}, zero, T0 + 61 + FORGET_AFTER) == []


def test_state_is_written_only_when_the_names_change(tmp_path: Path) -> None:
    fill = AbsentFill(tmp_path)
    fill.fill("pool", {"a"}, zero, T0)
    path = tmp_path / "pool.json"
    assert json.loads(path.read_text()) == {"names": {"a": None}}
    before = path.stat().st_mtime_ns
    path.touch()
    stamp = path.stat().st_mtime_ns
    for i in range(5):
        fill.fill("pool", {"a"}, zero, T0 + 60 * (i + 1))
    assert path.stat().st_mtime_ns == stamp >= before
    fill.fill("pool", set(), zero, T0 + 600)
    assert json.loads(path.read_text()) == {"names": {"a": T0 + 600}}


def test_slurpers_without_such_families_write_nothing(tmp_path: Path) -> None:
    fill = AbsentFill(tmp_path)
    assert fill.fill("load", set(), zero, T0) == []
    assert not any(tmp_path.iterdir())


def test_read_only_fills_from_the_stored_names_and_changes_nothing(tmp_path: Path) -> None:
    AbsentFill(tmp_path).fill("pool", {"a", "b"}, zero, T0)
    stored = (tmp_path / "pool.json").read_text()
    dry = AbsentFill(tmp_path, read_only=True)
    assert dry.fill("pool", {"a", "c"}, zero, T0 + 60) == [("b", 0.0)]
    assert (tmp_path / "pool.json").read_text() == stored


def test_a_family_that_no_longer_fills_is_dropped(tmp_path: Path) -> None:
    fill = AbsentFill(tmp_path)
    fill.fill("pool", {"a", "b"}, zero, T0)
    assert fill.fill("pool", set(), lambda n: 0.0 if n == "a" else None, T0 + 60) == [("a", 0.0)]
    assert json.loads((tmp_path / "pool.json").read_text()) == {"names": {"a": T0 + 60}}


def test_a_damaged_state_file_starts_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "pool.json").write_text('{"names": {"a": "soon", "b": 12')
    assert AbsentFill(tmp_path).fill("pool", {"c"}, zero, T0) == []
    assert "unreadable" in caplog.text
    (tmp_path / "pool.json").write_text('{"names": {"a": "soon", "b": [1]}}')
    assert AbsentFill(tmp_path).fill("pool", set(), zero, T0) == [("a", 0.0), ("b", 0.0)]


def test_names_kept_are_bounded_the_longest_absent_forgotten_first(tmp_path: Path) -> None:
    """A source whose names churn (a new name every run) keeps at most max_names, not one per run."""
    fill = AbsentFill(tmp_path, max_names=5)
    out: list[tuple[str, float]] = []
    for i in range(50):
        out = fill.fill("jobs", {f"job{i}"}, zero, T0 + 60 * i)
    assert [name for name, _ in out] == ["job45", "job46", "job47", "job48"]
    stored = json.loads((tmp_path / "jobs.json").read_text())["names"]
    assert sorted(stored) == ["job45", "job46", "job47", "job48", "job49"]
    assert stored["job49"] is None  # reported by the last run: kept, not absent
