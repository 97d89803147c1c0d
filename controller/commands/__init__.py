"""One module per `huntazectl` subcommand; each exposes ``register(subparsers)``."""
