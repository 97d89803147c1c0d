"""What on-call uses: the pipeline's queues, dead-letter triage and redrive, status collectors and diagnosis.

Called by the `huntazectl dlq` and `huntazectl status` commands (controller/commands/dlq.py, status.py), which
import these modules inside their handlers so that `huntazectl --help` stays fast.
"""
