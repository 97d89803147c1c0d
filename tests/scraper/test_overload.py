"""`scraper.overload.LoadProbe` reads CPU pressure (PSI) from the cgroup first, then the host."""

from __future__ import annotations

from pathlib import Path

from scraper.overload import MAX_STRETCH, LoadProbe


def test_load_probe_reads_cgroup_pressure_and_stretches_timeouts(tmp_path: Path) -> None:
    (tmp_path / "cpu.pressure").write_text("some avg10=75.50 avg60=1.00 avg300=0.00 total=5\n")
    probe = LoadProbe(str(tmp_path), threshold_pct=50)
    assert probe.pressure_pct() == 75.5 and probe.overloaded()
    assert probe.stretch() == min(MAX_STRETCH, 1 + 2 * 0.755)


def test_load_probe_idle_cgroup_is_not_overloaded(tmp_path: Path) -> None:
    (tmp_path / "cpu.pressure").write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    probe = LoadProbe(str(tmp_path), threshold_pct=50)
    assert not probe.overloaded() and probe.stretch() == 1.0
