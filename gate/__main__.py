"""``python -m gate --help | --check | --schema``: the gate's settings, outside Lambda.

The gate itself runs inside Lambda (`gate.handler.handler`); this entry point lets a person read its settings
table, check an environment before deploying it, or regenerate ``gate/settings.schema.json``.
"""

import sys

from common.settings import program_main
from gate.settings import GateSettings

USAGE = """usage: python -m gate [--help | --check | --schema]

The Huntaze gate: a Lambda (handler gate.handler.handler) that rate-limits jobs from the ingress queue and
forwards them to the workflows FIFO queue. It is configured only by environment variables.

  --help    this text and the settings table
  --check   load the settings from this environment; print each problem (exit 2) or "settings ok"
  --schema  print the settings contract as JSON (gate/settings.schema.json)"""

code = program_main(GateSettings, "gate", sys.argv[1:], USAGE)
sys.exit(0 if code is None else code)
