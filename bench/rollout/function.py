"""Gate release benchmark: ``nice .venv/bin/python bench/rollout/function.py [--rate 0.8] [--only good|bad]``.

Prints figures, asserts nothing. On the whole local stack (moto over HTTP, redis-server, the stand-in, the gate
in the local Lambda runtime, a scraper task with Chromium), one good and one bad release of the gate, each by
Canary10Percent5Minutes under steady load (``--rate`` of the time-scaled limit, 10 per 60 s divided by
``--scale``), each released with `huntazectl apply` as an operator would (`tests.helpers.gate_release`): the gate
names its CodeDeploy deployment group (manifests/gate.yaml), so each release is a CodeDeploy deployment that the
local plane's CodeDeploy engine runs (its schedule divided by ``--deploy-scale``, default ``--scale``):

- jobs lost (no result and no dead letter), dead-lettered, and duplicated (a send_message that reached the
  platform twice, or a job with two results), target 0/0/0;
- the shift's outcome and time: a good release from apply to COMPLETED (the canary bakes 5 minutes / scale); a
  bad one (every invocation fails) from apply to the alias back on the old version alone, with the alarm that
  stopped it (gate_release_errors, the manifests' canary-sized alarm the deployment group watches: a good one
  must not trip it), then to the last of its jobs done;
- the extra API calls per deploy: the Lambda and CodeDeploy calls `apply` made for the release beyond updating
  the code (PublishVersion, GetAlias, UpdateAlias, the version reads that check the alias serves $LATEST's code,
  GetDeployment, CreateDeployment...), beside the apply's Lambda and CodeDeploy calls in all; and the local
  engine's calls per tick while shifting (what CodeDeploy makes on AWS: not ours there).

Runs beside bench/rollout/service.py (the scraper's rolling deployment) on the same unit of work: one release
under steady load.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

CANARY = "Canary10Percent5Minutes"
RELEASE_CALLS = frozenset({"PublishVersion", "GetAlias", "CreateAlias", "UpdateAlias", "CreateDeployment",
                           "GetDeployment", "StopDeployment"})


class CallCounter:
    """Lambda and CodeDeploy calls by operation (a botocore hook); version reads (a Qualifier) are counted as
    release calls. Clients are shared by the process (`common.aws.client`): only the calls of this thread and of
    the reconciler's workers count, not the local plane's (its mapping runners read the alias every second)."""

    def __init__(self, threads: tuple[str, ...] = ("reconcile",)) -> None:
        self.calls: Counter[str] = Counter()
        self.owner = threading.get_ident()
        self.threads = threads

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        current = threading.current_thread()
        if current.ident != self.owner and not current.name.startswith(self.threads):
            return
        name = model.name
        if name == "GetFunctionConfiguration" and params.get("Qualifier"):
            name = "GetFunctionConfiguration(version)"
        self.calls[name] += 1

    def release_calls(self) -> int:
        return sum(n for op, n in self.calls.items() if op in RELEASE_CALLS or op.endswith("(version)"))


def _counted_release(pipe: Any, root: Path, gate_dir: Path) -> CallCounter:
    from common.aws import client
    from controller.calls import CallGate
    from tests.helpers.gate_release import release

    counter = CallCounter()
    # The reconciler's clients are cached apart from the default ones (fewer botocore attempts: CallGate's);
    # apply's rollout lines read through the default ones.
    attempts = CallGate().max_attempts
    clients = [client(s, **kw) for s in ("lambda", "codedeploy") for kw in ({}, {"max_attempts": attempts})]
    for c in clients:
        c.meta.events.register("provide-client-params.*.*", counter)
    try:
        release(pipe, root, gate_dir, CANARY)
    finally:
        for c in clients:
            c.meta.events.unregister("provide-client-params.*.*", counter)
    return counter


def _follower_calls_per_tick(pipe: Any) -> float:
    """The CodeDeploy engine's calls in one tick (all services), while a deployment is in progress."""
    from common.aws import client

    counter = CallCounter(threads=())
    clients = [client(s) for s in ("lambda", "cloudwatch", "codedeploy")]
    for c in clients:
        c.meta.events.register("provide-client-params.*.*", counter)
    try:
        pipe.plane.deployments.tick()
    except Exception:  # the plane's own tick moved the deployment at the same moment: no figure
        return float("nan")
    finally:
        for c in clients:
            c.meta.events.unregister("provide-client-params.*.*", counter)
    return float(sum(counter.calls.values()))


def one_release(kind: str, rate: float) -> dict[str, Any]:
    """A good or a bad release under steady load; its figures."""
    from localplane.codedeploy_engine import deploy_time_scale
    from tests.helpers import gate_release as gr
    from tests.helpers import invariants
    from tests.helpers.pipeline import TIME_SCALE, LoadProfile, running_pipeline

    bake_s = 5 * 60 / deploy_time_scale(TIME_SCALE)
    profile = LoadProfile()
    window = profile.window_s
    appended = gr.HARMLESS if kind == "good" else gr.FAILS_EVERY_BATCH
    with tempfile.TemporaryDirectory(prefix=f"bench-rollout-{kind}-") as tmp:
        root = Path(tmp)
        with running_pipeline(root, profile, before_plane=gr.stop_stack_controller) as pipe:
            load = gr.SteadyLoad(pipe, interval_s=window / (10 * rate), label=f"bench-{kind}")
            load.start()
            try:
                time.sleep(window)
                released = time.monotonic()
                counter = _counted_release(pipe, root, gr.gate_variant(root, kind, appended))
                follower = float("nan")
                state, reason = "SHIFTING", ""
                while time.monotonic() - released < bake_s + 60 and state == "SHIFTING":
                    time.sleep(0.25)
                    weights, record = gr.alias()
                    state, reason = str(record.get("state")), str(record.get("reason", ""))
                    if state == "SHIFTING" and len(weights) == 2 and math.isnan(follower):  # the canary, once
                        follower = _follower_calls_per_tick(pipe)
                shift_s = time.monotonic() - released
                time.sleep(window)
            finally:
                load.stop()
            done = pipe.wait_until_finished(timeout_s=180 + 600)
            ended_s = time.monotonic() - released
            outcomes = invariants.Outcomes.read()
            platform = list(pipe.stack.site.state.messages())
            sent = list(pipe.sent)
    arrived = Counter(str(m.text) for m in platform)
    lettered = {d.correlation_id() for d in outcomes.dead_letters}
    lost = sum(1 for job in sent if not outcomes.results.get(job.message_id) and job.correlation_id not in lettered)
    duplicated = sum(1 for job in sent if job.text is not None and arrived[job.text] > 1)
    duplicated += sum(1 for records in outcomes.results.values() if len({r["_key"] for r in records}) > 1)
    return {
        "kind": kind, "jobs": len(sent), "ended": done, "lost": lost, "dead": len(outcomes.dead_letters),
        "duplicated": duplicated, "state": state, "reason": reason, "shift_s": shift_s, "ended_s": ended_s,
        "apply_calls": sum(counter.calls.values()), "release_calls": counter.release_calls(),
        "calls": dict(counter.calls), "follower_per_tick": follower, "bake_s": bake_s,
    }


def report(results: list[dict[str, Any]]) -> None:
    print(f"\ngate release by a CodeDeploy {CANARY} deployment under steady load (time scale "
          f"{os.environ.get('HUNTAZE_LOAD_TIME_SCALE', '6')}; canary bake {results[0]['bake_s']:.0f}s)")
    print(f"{'':38}" + "".join(f"{r['kind'] + ' release':>22}" for r in results))
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("jobs sent / ended", lambda r: f"{r['jobs']} / {r['ended']}"),
        ("lost / dead-lettered / duplicated", lambda r: f"{r['lost']} / {r['dead']} / {r['duplicated']}"),
        ("shift outcome", lambda r: r["state"]),
        ("apply -> shift outcome (s)", lambda r: f"{r['shift_s']:.1f}"),
        ("apply -> every job ended (s)", lambda r: f"{r['ended_s']:.1f}"),
        ("Lambda+CodeDeploy calls of the apply", lambda r: str(r["apply_calls"])),
        ("  of which release (extra) calls", lambda r: str(r["release_calls"])),
        ("engine calls per tick (local)", lambda r: f"{r['follower_per_tick']:.0f}"),
    ]
    for label, value in rows:
        print(f"{label:38}" + "".join(f"{value(r):>22}" for r in results))
    for r in results:
        print(f"{r['kind']}: reason {r['reason']!r}; apply's Lambda and CodeDeploy calls {r['calls']}")
    print("target: 0 / 0 / 0; a bad release's jobs return after the ingress visibility (180 s) and the old version "
          "ends them")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=6.0, help="time scale of rate windows and the schedule")
    parser.add_argument("--deploy-scale", type=float, default=None,
                        help="time scale of the CodeDeploy schedule alone (default: --scale)")
    parser.add_argument("--rate", type=float, default=0.8, help="steady load as a fraction of the limit")
    parser.add_argument("--only", choices=["good", "bad"], default=None, help="one release only")
    args = parser.parse_args(argv)
    os.environ["HUNTAZE_LOAD_TIME_SCALE"] = str(args.scale)
    if args.deploy_scale is not None:
        os.environ["HUNTAZE_DEPLOY_TIME_SCALE"] = str(args.deploy_scale)
    results = []
    for kind in [args.only] if args.only else ["good", "bad"]:
        results.append(one_release(kind, args.rate))
        print(f"{kind}: {results[-1]}", flush=True)  # each release's figures as soon as they are measured
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
