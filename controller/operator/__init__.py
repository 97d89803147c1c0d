"""The operator: `huntazectl controller run` keeps the stack reconciled (loop, requeue, guard, spec watch)."""
