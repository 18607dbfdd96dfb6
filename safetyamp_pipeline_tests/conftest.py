"""Suite-wide settings, applied before any test module imports the code location."""

import os

# Source reads retry with backoff in production (defs/sources/retry.py). Tests that inject a lasting
# outage would wait through every attempt; defs/test_source_retry.py checks the policy itself.
os.environ.setdefault("SAFETYAMP_SOURCE_MAX_RETRIES", "0")
