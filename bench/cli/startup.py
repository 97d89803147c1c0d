"""Benchmark: how fast `huntazectl` answers `--help`, a usage error and each command's `--help`, beside the
tools its users know (kubectl, terraform, the AWS CLI) doing the same, when they are installed.

Run: ``.venv/bin/python bench/cli/startup.py [--runs 7] [--git-ref REF]``

Each row runs the command line ``--runs`` times as a fresh process (no shell, output discarded) and prints the
median and the fastest wall time in milliseconds. With ``--git-ref`` it also times the entry point of that
revision (checked out into a temporary worktree) for a before/after comparison. Prints figures only; nothing is
asserted (the machine is shared and loaded).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def timed(argv: Sequence[str], runs: int, cwd: Path = REPO, env: dict[str, str] | None = None) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(list(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False, timeout=60)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def row(label: str, samples: list[float]) -> str:
    return f"{label:<52} {statistics.median(samples):>8.0f} {min(samples):>8.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--git-ref", default=None, help="also time this revision (e.g. main) for before/after")
    args = parser.parse_args()
    ctl = [PYTHON, "-m", "controller.cli"]
    cases = [("python -c pass (the interpreter alone: the floor)", [PYTHON, "-c", "pass"]),
             ("huntazectl --help", [*ctl, "--help"]), ("huntazectl (usage error: bogus)", [*ctl, "bogus"])]
    cases += [(f"huntazectl {c} --help", [*ctl, c, "--help"])
              for c in ("validate", "diff", "drift", "get", "describe", "apply", "delete", "up")]
    print(f"{'command (fresh process)':<52} {'median':>8} {'min':>8}   ms, {args.runs} runs each")
    for label, argv in cases:
        print(row(label, timed(argv, args.runs)))
    if args.git_ref:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "before"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.git_ref], cwd=REPO,
                           check=True, capture_output=True)
            try:
                env = {**os.environ, "PYTHONPATH": str(tree)}
                for label, extra in (("--help", ["--help"]), ("(usage error: bogus)", ["bogus"])):
                    print(row(f"huntazectl {label} @ {args.git_ref}", timed([*ctl, *extra], args.runs, tree, env)))
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False,
                               capture_output=True)
    peers = [("kubectl --help", ["kubectl", "--help"]), ("terraform -help", ["terraform", "-help"]),
             ("aws --version", ["aws", "--version"])]
    for label, argv in peers:
        if shutil.which(argv[0]):
            print(row(f"peer: {label}", timed(argv, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
