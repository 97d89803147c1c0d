"""Settings of the scraper worker (`python -m scraper`), read from the environment once at start.

The controller's ECS task definition sets these; tests set them on the worker subprocess. Every variable:

Queue and storage
- ``HUNTAZE_WORKFLOWS_QUEUE_URL`` (required): URL of ``huntaze-hybrid-workflows.fifo``.
- ``HUNTAZE_WORKFLOWS_DLQ_URL``: URL of its FIFO DLQ. Unset: derived from the queue's RedrivePolicy.
- ``HUNTAZE_RESULTS_BUCKET`` (required): S3 bucket for ``results/…`` JSON and ``media/…`` files.
- ``HUNTAZE_WAIT_TIME_S`` (20): SQS long-poll wait. ``HUNTAZE_BATCH_SIZE`` (10): messages per receive.
- ``HUNTAZE_CONCURRENCY`` (3): message groups processed at once (sized for 1 vCPU / 2 GB of Chromium).

Target site
- ``HUNTAZE_SITE_URL`` (required, no default: never a real site by accident): base URL of the platform.
- ``HUNTAZE_ADAPTER`` (``browser``): ``browser``, ``http`` or the name of a ``huntaze.site_adapters`` entry point.
- ``HUNTAZE_API_KEY_SECRET_ID`` (``onlyfans/api-key``): Secrets Manager secret of the HTTP adapter's API key
  (a plain string, or JSON ``{"api_key": ...}``).
- ``HUNTAZE_LOGIN_SECRET_ID`` (``onlyfans/login``): Secrets Manager secret of the browser login password,
  JSON ``{"password": ...}``.

Time budgets
- ``HUNTAZE_ACTION_TIMEOUT_S`` (30): first attempt's timeout; a timed-out attempt is retried with twice as
  long while that still fits the budgets. ``HUNTAZE_JOB_DEADLINE_S`` (240): a job's whole budget.
- ``HUNTAZE_VISIBILITY_MARGIN_S`` (5): kept free before a message's visibility ends.
- ``HUNTAZE_HEARTBEAT_INTERVAL_S`` (10): how often held messages' visibility is checked and extended.
- ``HUNTAZE_SHUTDOWN_BUDGET_S`` (25): after SIGTERM, time to finish or release in-flight jobs (ECS gives 30).
- ``HUNTAZE_RETRY_BASE_S`` (1): first 5xx retry wait; then 2x, 4x, with jitter. Also scales the wait between
  failed rounds of a held job (1, 2, 4, 8, 16, 30 s x this).
- ``HUNTAZE_MAX_ROUNDS`` (0: the queue's maxReceiveCount): rounds failed at the platform before a job is
  dead-lettered (429s and waits never count; see `scraper.runner`).
- ``HUNTAZE_OVERLOAD_PRESSURE_PCT`` (50): CPU pressure (PSI some avg10, %) from which a timeout is blamed on
  local overload, not on the platform.

Circuit breaker (state in Redis at ``REDIS_URL``, shared with the gate)
- ``HUNTAZE_PLATFORM_LIMIT`` (unset): ``N/W`` (``10/60s``, ``6/10``, ``5/500ms``), the hard limit taken again by each
  task right before a job acts (`scraper.platform_slot`); set it to the gate's global limit. Unset: no platform
  slot. ``HUNTAZE_PLATFORM_LIMIT_NAME`` (``global``): which shared limit.
- ``HUNTAZE_BREAKER_THRESHOLD`` (5), ``HUNTAZE_BREAKER_OPEN_S`` (60), ``HUNTAZE_BREAKER_NAME`` (``onlyfans``).

Browser
- ``HUNTAZE_CHROMIUM_PATH`` (``/usr/bin/chromium``), ``HUNTAZE_HEADLESS`` (true).
- ``HUNTAZE_BROWSER_RECYCLE_JOBS`` (200): relaunch the browser after this many jobs.
- ``HUNTAZE_MEMORY_THRESHOLD_RATIO`` (0.8): relaunch when cgroup ``memory.current / memory.max`` passes it.
- ``HUNTAZE_MEMORY_LIMIT_BYTES`` (0): limit to use when ``memory.max`` is ``max`` (0: no memory recycling then).
- ``HUNTAZE_CGROUP_DIR`` (``/sys/fs/cgroup``): where ``memory.current`` and ``memory.max`` are read.
- ``HUNTAZE_EXTRA_CHROMIUM_ARGS``: extra launch switches, space separated.
- ``HUNTAZE_CONTEXT_POOL_SIZE`` (unset: ``HUNTAZE_CONCURRENCY``): idle logged-in browser contexts (each with its
  page and renderer) kept open for reuse by a creator's next job (one per creator, least recently used closed
  first; 0: a fresh context per job). Each costs a renderer's memory.

Observability
- ``HUNTAZE_HEALTH_PORT`` (8080; 0 picks a free port, logged at start), ``HUNTAZE_HEALTH_HOST`` (0.0.0.0),
  ``HUNTAZE_STUCK_AFTER_S`` (90): the health check fails when the loop has not ticked for this long, or when a
  job has run this long past its deadline.
- ``HUNTAZE_METRICS_NAMESPACE`` (``Huntaze/OnlyFans``), ``HUNTAZE_METRICS_FLUSH_S`` (15).
- Shared (see `common.settings`): ``REDIS_URL``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``HUNTAZE_ENV``,
  ``HUNTAZE_LOG_LEVEL``.
"""

from __future__ import annotations

from pydantic import Field

from common.settings import HuntazeSettings

DEFAULT_CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


class ScraperSettings(HuntazeSettings):
    """Every knob of the worker; see the module docstring for the environment variables."""

    workflows_queue_url: str = Field(min_length=1)
    workflows_dlq_url: str | None = None
    results_bucket: str = Field(min_length=1)
    wait_time_s: int = Field(20, ge=0, le=20)
    batch_size: int = Field(10, ge=1, le=10)
    concurrency: int = Field(3, ge=1, le=64)

    site_url: str = Field(min_length=1, pattern=r"^https?://")
    adapter: str = Field("browser", min_length=1)
    api_key_secret_id: str = "onlyfans/api-key"
    login_secret_id: str = "onlyfans/login"

    action_timeout_s: float = Field(30.0, gt=0)
    job_deadline_s: float = Field(240.0, gt=0)
    visibility_margin_s: float = Field(5.0, ge=0)
    heartbeat_interval_s: float = Field(10.0, gt=0)
    shutdown_budget_s: float = Field(25.0, gt=0, le=120)
    retry_base_s: float = Field(1.0, ge=0)
    max_rounds: int = Field(0, ge=0)
    overload_pressure_pct: float = Field(50.0, gt=0, le=100)

    platform_limit: str | None = Field(None, pattern=r"^\s*\d+\s*/\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$")
    platform_limit_name: str = Field("global", pattern=r"^[a-z0-9_:-]+$")

    breaker_name: str = Field("onlyfans", pattern=r"^[a-z0-9_-]+$")
    breaker_threshold: int = Field(5, ge=1)
    breaker_open_s: float = Field(60.0, gt=0)

    chromium_path: str = "/usr/bin/chromium"
    headless: bool = True
    browser_recycle_jobs: int = Field(200, ge=1)
    memory_threshold_ratio: float = Field(0.8, gt=0, le=1)
    memory_limit_bytes: int = Field(0, ge=0)
    cgroup_dir: str = "/sys/fs/cgroup"
    extra_chromium_args: str = ""
    context_pool_size: int | None = Field(None, ge=0, le=256)

    health_host: str = "0.0.0.0"
    health_port: int = Field(8080, ge=0, le=65535)
    stuck_after_s: float = Field(90.0, gt=0)
    metrics_namespace: str = "Huntaze/OnlyFans"
    metrics_flush_s: float = Field(15.0, gt=0)

    def chromium_args(self) -> list[str]:
        return [*DEFAULT_CHROMIUM_ARGS, *self.extra_chromium_args.split()]
