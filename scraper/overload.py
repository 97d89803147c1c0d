"""Local CPU overload: is this task's host starved, so that a timeout says more about us than the platform?

Used by `scraper.runner`: a timeout under overload is not counted as the platform's failure (no breaker
failure, no counted round), and `scraper.policy` stretches attempt timeouts by `LoadProbe.stretch()`.
The signal is Linux pressure stall information (PSI) for CPU, "some avg10": the share of the last 10 s in which
runnable tasks waited for a CPU. It is read from the cgroup (``{cgroup_dir}/cpu.pressure``, what an ECS task
sees of itself) and falls back to the host (``/proc/pressure/cpu``), then to the 1-minute load average per CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_STRETCH = 3.0


class LoadProbe:
    def __init__(self, cgroup_dir: str, threshold_pct: float) -> None:
        self.threshold_pct = threshold_pct
        self._sources = [Path(cgroup_dir) / "cpu.pressure", Path("/proc/pressure/cpu")]

    def pressure_pct(self) -> float:
        """CPU pressure of the last ~10 s in percent (load average per CPU x 25 when PSI is unavailable)."""
        for source in self._sources:
            try:
                first = source.read_text().splitlines()[0]
            except (OSError, IndexError):
                continue
            for part in first.split():
                if part.startswith("avg10="):
                    return float(part.split("=", 1)[1])
        return min(100.0, os.getloadavg()[0] / (os.cpu_count() or 1) * 25)

    def overloaded(self) -> bool:
        return self.pressure_pct() >= self.threshold_pct

    def stretch(self) -> float:
        """How much longer than configured an attempt may take now: 1 on an idle host, up to 3x when starved."""
        return min(MAX_STRETCH, 1.0 + 2.0 * self.pressure_pct() / 100.0)
