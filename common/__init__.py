"""What the three programs (controller, gate, scraper) share, and nothing else.

- `common.settings`: the pydantic-settings base (``HUNTAZE_`` prefix, standard AWS variables, ``REDIS_URL``).
- `common.aws`: the one boto3 client factory.
- `common.contract`: the job payload and result record, the message contract of the pipeline.
- `common.identity`: the stable message identity and FIFO deduplication id (ARCHITECTURE.md decision 3).
- `common.jsonlog`: one JSON object per log line, with bound context.

Keep it small: code that only one program needs lives in that program.
"""
