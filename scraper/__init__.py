"""The Playwright scraper worker: consumes ``huntaze-hybrid-workflows.fifo`` and runs each job on the target site.

Modules, in the order a job meets them: `worker` (the loop, FIFO groups, shutdown), `consumer` (SQS),
`breaker` (shared circuit breaker in Redis), `runner` (one job: gates, attempts, result), `policy` (retries),
`budget` (deadlines), `idempotency`, `adapters` (browser, http, entry points), `browser` (Chromium lifecycle),
`results` (S3), `metrics` (CloudWatch), `health`. Settings: `settings.ScraperSettings`.
"""
