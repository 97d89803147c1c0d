"""`huntazectl schema job|result`: print the JSON Schema of the message contract for producers."""

from __future__ import annotations

import argparse
import json
from typing import Any

from common.contract import json_schema


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "schema", help="print the JSON Schema of a job payload or a result record"
    )
    parser.add_argument("model", choices=["job", "result"])
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(args.model), indent=2, sort_keys=True))
    return 0
