"""`huntazectl send`: put your own jobs on the ingress queue, checked against the contract first.

    huntazectl send --action send_message --creator c1 --user fan1 --text "hi" [--count N] [--rate R/s]
    huntazectl send --from jobs.jsonl [--rate 5/s]

Every job is validated before the first one is sent, so a bad line sends nothing (`FILE:LINE: field: message`).
Sending goes through `common.producer` (batches of 10, a correlation id per job, transient refusals retried).
Against the local stack, run `eval "$(huntazectl env)"` first; `scrape_profile` and `download_media` then default
their URLs to the stand-in platform (``HUNTAZE_SITE_URL``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.errors import HuntazeCtlError

ACTIONS = ("send_message", "scrape_profile", "download_media", "get_messages")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|m|min|h))?\s*$")
_PER_S = {"s": 1.0, "m": 1 / 60, "min": 1 / 60, "h": 1 / 3600, None: 1.0}


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "send", help="enqueue jobs on the ingress queue (validated against the contract first)"
    )
    parser.add_argument("--action", choices=ACTIONS, help="what the job does")
    parser.add_argument("--creator", help="creator_id (the FIFO message group)")
    parser.add_argument("--user", default="user_cli", help="user_id (default user_cli)")
    parser.add_argument("--text", help="message_content of send_message")
    parser.add_argument("--url", action="append", default=[],
                        help="profile_url (scrape_profile) or a media URL (download_media, repeatable); "
                             "default: the stand-in platform at $HUNTAZE_SITE_URL")
    parser.add_argument("--count", type=int, default=1, help="send N jobs like this one (default 1)")
    parser.add_argument("--rate", type=parse_rate, default=None, metavar="R/s",
                        help="pace the sends: 5/s, 30/m, 0.5 (per second); default as fast as SQS takes them")
    parser.add_argument("--from", dest="from_file", type=Path, metavar="FILE.jsonl",
                        help="one job per line (JSON objects in the contract's shape)")
    parser.add_argument("--queue", default=None, help="queue name (default huntaze-rate-limiter-queue)")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.set_defaults(handler=run)


def parse_rate(text: str) -> float:
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"--rate {text!r}: write it as R/s, R/m or R/h with R > 0, e.g. 5/s")
    return float(match.group(1)) * _PER_S[match.group(2)]


def job_from_flags(args: argparse.Namespace, index: int) -> dict[str, Any]:
    if not args.action or not args.creator:
        raise HuntazeCtlError("send: give --action and --creator (or --from FILE.jsonl)")
    doc: dict[str, Any] = {
        "action": args.action, "creator_id": args.creator, "user_id": args.user,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    site = os.environ.get("HUNTAZE_SITE_URL", "").rstrip("/")
    if args.action == "send_message":
        text = args.text or "hello from huntazectl send"
        doc["message_content"] = f"{text} #{index + 1}" if args.count > 1 else text
    elif args.action == "scrape_profile":
        doc["profile_url"] = args.url[0] if args.url else _site_url(site, f"/u/{args.creator}", "--url")
    elif args.action == "download_media":
        doc["media_urls"] = args.url or [_site_url(site, f"/media/{args.creator}-m1/download", "--url")]
    return doc


def _site_url(site: str, path: str, flag: str) -> str:
    if not site:
        raise HuntazeCtlError(f"send: give {flag} (or run `eval \"$(huntazectl env)\"` so HUNTAZE_SITE_URL is set)")
    return site + path


def jobs_from_file(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(``file:line``, document) per non-blank line; a line that is not a JSON object is an error here."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise HuntazeCtlError(f"{path}: cannot read: {exc}") from None
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HuntazeCtlError(f"{path}:{number}: not valid JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(doc, dict):
            raise HuntazeCtlError(f"{path}:{number}: must be a JSON object (one job per line)")
        doc.setdefault("timestamp", datetime.now(UTC).isoformat())
        out.append((f"{path}:{number}", doc))
    if not out:
        raise HuntazeCtlError(f"{path}: no jobs (one JSON object per line)")
    return out


def _validated(sources: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    from common.contract import ContractError
    from common.producer import prepare

    jobs, problems = [], []
    for where, doc in sources:
        try:
            jobs.append(prepare(doc))
        except ContractError as exc:
            problems += [f"{where}: {p.field}: {p.message}" for p in exc.problems]
    if problems:
        raise HuntazeCtlError("nothing sent; fix these jobs first:\n" + "\n".join(problems))
    return jobs


def run(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise HuntazeCtlError(f"--count {args.count}: must be at least 1")
    if args.from_file is not None:
        sources = jobs_from_file(args.from_file) * args.count
    else:
        sources = [(f"job {i + 1}", job_from_flags(args, i)) for i in range(args.count)]
    jobs = _validated(sources)
    sent = _send(jobs, args)  # correlation id -> SQS message id (the result record's message_id)
    if args.output == "json":
        print(json.dumps({"sent": len(sent), "correlation_ids": list(sent), "message_ids": list(sent.values())}))
    else:
        print(f"sent {len(sent)} job(s) to {args.queue or 'huntaze-rate-limiter-queue'} (correlation id, message id)")
        for cid, mid in list(sent.items())[:10]:
            print(f"  {cid}  {mid}")
        if len(sent) > 10:
            print(f"  … and {len(sent) - 10} more (-o json lists all)")
    return 0


def _send(jobs: list[Any], args: argparse.Namespace) -> dict[str, str]:
    from common.producer import INGRESS_QUEUE, EnqueueError, Producer

    if args.count > 1 and args.from_file is not None:
        jobs = [_fresh_identity(job) for job in jobs]
    producer = Producer(queue_name=args.queue or INGRESS_QUEUE)
    started = time.monotonic()
    try:
        for i, job in enumerate(jobs):
            producer.enqueue(job)
            if args.rate:
                due = started + (i + 1) / args.rate
                if due > time.monotonic():
                    producer.flush()  # the next job is not due yet: send what is buffered now
                    time.sleep(max(0.0, due - time.monotonic()))  # pacing the producer is the point here
        producer.flush()
    except EnqueueError as exc:
        print(f"sent {len(producer.sent)} job(s) before the failure", file=sys.stderr)
        raise HuntazeCtlError(str(exc)) from None
    except Exception as exc:  # no endpoint, no queue, no credentials: say what to check
        raise HuntazeCtlError(
            f"sending failed after {len(producer.sent)} job(s): {type(exc).__name__}: {exc}; is the stack up "
            "(`huntazectl up --detach`) and the shell pointed at it (`eval \"$(huntazectl env)\"`)?"
        ) from None
    return producer.message_ids


def _fresh_identity(job: Any) -> Any:
    """Repeated lines of a file (--count N) are distinct jobs: each copy gets its own correlation id."""
    import uuid

    metadata = job.metadata.model_copy(update={"correlation_id": f"job-{uuid.uuid4().hex}"})
    return job.model_copy(update={"metadata": metadata})
