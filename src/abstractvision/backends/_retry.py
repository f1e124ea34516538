"""When to send a failed HTTP request again, and after how long: pure functions, tested without a server.

Why pure: the sync and async transports share one decision, and a policy that reads only a status
and headers can be checked for every case in microseconds.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping

#: First backoff delay; doubles per attempt up to MAX_RETRY_DELAY_S, minus up to 25 % jitter.
INITIAL_RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 8.0
#: A server asking for a longer wait than this fails at once instead of stalling the caller.
MAX_RETRY_AFTER_S = 120.0
#: 4xx statuses worth retrying (timeout, conflict, rate limit); every 5xx is retried too.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked to wait (``retry-after-ms``, then ``Retry-After`` seconds or date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an answer with ``status`` may succeed when sent again (never other 4xx)."""
    lowered = {k.lower(): v.lower() for k, v in headers.items()}
    if lowered.get("x-should-retry") in ("true", "false"):
        return lowered["x-should-retry"] == "true"
    return status in RETRYABLE_STATUSES or status >= 500


def retry_delay(attempt: int, headers: Mapping[str, str], jitter: Callable[[], float] = random.random) -> float | None:
    """Seconds to wait before retry number ``attempt + 1``; ``None`` when the server asked too much.

    A server-requested wait is honoured as is; otherwise exponential backoff with jitter.
    """
    asked = parse_retry_after(headers)
    if asked is not None:
        return asked if asked <= MAX_RETRY_AFTER_S else None
    backoff = min(INITIAL_RETRY_DELAY_S * 2**attempt, MAX_RETRY_DELAY_S)
    return backoff * (1 - 0.25 * jitter())


__all__ = [
    "INITIAL_RETRY_DELAY_S",
    "MAX_RETRY_AFTER_S",
    "MAX_RETRY_DELAY_S",
    "RETRYABLE_STATUSES",
    "parse_retry_after",
    "retry_delay",
    "should_retry",
]
