"""The endpoint's defaults, Ray-free so the CLI's parser can show them without importing Ray (whose auth mode
is read once, at import, after ``vgf-ray`` has set it)."""

HOST = "127.0.0.1"  # the only address the endpoint listens on
DEFAULT_PORT = 8000
DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_BATCH_WAIT_MS = 2.0
MAX_REQUEST_ROWS = 1024  # observations in one request (default of --max-request-rows)
