"""`huntazectl results`: list the result records the scraper stored in S3, newest last.

    huntazectl results [--creator C] [--action A] [--since 10m|2026-12-01T08:00Z] [--status S] [-o json]

Keys are ``results/{creator}/{action}/{yyyy}/{mm}/{dd}/{message_id}.json`` (`scraper.results`), so --creator and
--action narrow the S3 listing itself; --since filters on the object's LastModified, --status on the record.
The bucket is the stack's results bucket (``huntaze-onlyfans-results-<env>-<account>``), or --bucket.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.errors import HuntazeCtlError

ACTIONS = ("send_message", "scrape_profile", "download_media", "get_messages")
BUCKET_PREFIX = "huntaze-onlyfans-results-"
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("results", help="list stored job results (S3)")
    parser.add_argument("--creator", help="only this creator_id")
    parser.add_argument("--action", choices=ACTIONS, help="only this action")
    parser.add_argument("--since", type=parse_since, metavar="T",
                        help="stored at or after T: a duration ago (30s, 10m, 2h, 1d) or an ISO 8601 time")
    parser.add_argument("--id", dest="message_id", help="only this message id (as `huntazectl send` prints it)")
    parser.add_argument("--status", choices=["success", "failure", "rate_limited"], help="only this status")
    parser.add_argument("--bucket", help="results bucket (default: the one named huntaze-onlyfans-results-*)")
    parser.add_argument("--env", default=None, help="pick the bucket of this environment when there are several")
    parser.add_argument("--limit", type=int, default=1000, help="at most N records (default 1000)")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    parser.set_defaults(handler=run)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    moment = now or datetime.now(UTC)
    relative = _RELATIVE.match(text.strip())
    if relative:
        return moment - timedelta(**{_UNIT[relative.group(2)]: float(relative.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since {text!r}: give a duration (30s, 10m, 2h, 1d) or an ISO 8601 time (2026-12-01T08:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def find_bucket(env: str | None) -> str:
    from common.aws import client

    names = [str(b["Name"]) for b in client("s3").list_buckets().get("Buckets", [])]
    mine = [n for n in names if n.startswith(BUCKET_PREFIX) and (env is None or n.startswith(f"{BUCKET_PREFIX}{env}-"))]
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise HuntazeCtlError(f"no results bucket ({BUCKET_PREFIX}*) here; is the stack applied? (or give --bucket)")
    raise HuntazeCtlError(f"several results buckets ({', '.join(mine)}); pick one with --env or --bucket")


def _prefix(args: argparse.Namespace) -> str:
    if args.creator:
        return f"results/{args.creator}/" + (f"{args.action}/" if args.action else "")
    return "results/"


def list_results(args: argparse.Namespace, bucket: str) -> list[dict[str, Any]]:
    from common.aws import client

    s3 = client("s3")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=_prefix(args)):
        for obj in page.get("Contents", []):
            parts = str(obj["Key"]).split("/")
            if args.action and (len(parts) < 3 or parts[2] != args.action):
                continue
            if args.since and obj["LastModified"] < args.since:
                continue
            if args.message_id and not str(obj["Key"]).endswith(f"/{args.message_id}.json"):
                continue
            keys.append((obj["LastModified"], str(obj["Key"])))
    records = []
    for stored, key in sorted(keys):
        record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if args.status and record.get("status") != args.status:
            continue
        records.append({"key": key, "stored_at": stored.isoformat(), **record})
        if len(records) >= args.limit:
            break
    return records


def run(args: argparse.Namespace) -> int:
    try:
        bucket = args.bucket or find_bucket(args.env)
        records = list_results(args, bucket)
    except HuntazeCtlError:
        raise
    except Exception as exc:
        raise HuntazeCtlError(
            f"cannot read results: {type(exc).__name__}: {exc}; is the stack up and the shell pointed at it "
            "(`eval \"$(huntazectl env)\"`)?"
        ) from None
    if args.output == "json":
        print(json.dumps(records, indent=2, default=str))
        return 0
    _print_table(records, bucket)
    return 0


def _print_table(records: list[dict[str, Any]], bucket: str) -> None:
    from rich.table import Table

    from controller.commands._common import console

    table = Table(title=f"{len(records)} result(s) in s3://{bucket}")
    for column in ("stored at", "creator", "action", "status", "ms", "message id", "error"):
        table.add_column(column, justify="right" if column == "ms" else "left")
    for rec in records:
        error = rec.get("error") or {}
        table.add_row(rec["stored_at"][:19], rec.get("creator_id", ""), rec.get("action", ""), rec.get("status", ""),
                      str(rec.get("duration_ms", "")), rec.get("message_id", ""),
                      f"{error.get('type')}: {error.get('message', '')}"[:60] if error else "")
    console().print(table)
