"""The gate: the rate-limiting Lambda between huntaze-rate-limiter-queue and huntaze-hybrid-workflows.fifo.

Entry point `gate.handler.handler`. Modules: `settings` (env), `records` (event -> jobs), `limiter` + `decide.lua`
(Redis decisions), `forwarder` (SQS sends), `batch` (one invocation's work), `telemetry` (logs, EMF metrics),
`errors`. It imports `common` only, never the controller or the scraper; `controller.packaging.function_zip` builds
its deterministic zip.
"""
