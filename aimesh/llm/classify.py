"""Tell provider failures (worth trying the next provider) from programming errors.

A provider failure is an HTTP 408/409/429/5xx answer (Anthropic's 529 included), a
timeout, a connection error (httpx, aiohttp for google-genai), a malformed or empty
response (a body or SSE chunk that is not JSON, a stream with no chunk), or a ``ProviderError`` /
``ModelFileError`` from the local model. Everything else (``TypeError``, ``ValueError``
from our code, 400/401/403/404 answers...) is a bug or a configuration problem that
another provider would not fix, so it propagates.
"""

import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from operator import attrgetter

from langchain_core.exceptions import ModelError

from aimesh.errors import ModelFileError, ProviderError

_TRANSIENT_STATUS = frozenset({408, 409, 429})
_MAX_CAUSES = 8

# Looked up only in modules already imported: an exception can only come from an SDK
# that has been loaded, and importing one here would cost seconds.
_MALFORMED_OR_UNREACHABLE = (  # (module, class)
    ("anthropic", "APIResponseValidationError"),
    ("anthropic", "APIConnectionError"),
    ("openai", "APIResponseValidationError"),
    ("openai", "APIConnectionError"),
    ("google.genai.errors", "UnknownApiResponseError"),
    ("httpx", "TransportError"),
    ("httpx2", "TransportError"),
    ("aiohttp", "ClientError"),
)
# LangChain's own words when a provider's stream yielded no chunk (a ValueError).
_NO_CHUNKS = "No generation chunks were returned"
_GOOGLE_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")
_STATUS_ERRORS = (  # (module, class, attribute holding the HTTP status)
    ("anthropic", "APIStatusError", "status_code"),
    ("openai", "APIStatusError", "status_code"),
    ("google.genai.errors", "APIError", "code"),
    ("httpx", "HTTPStatusError", "response.status_code"),
    ("httpx2", "HTTPStatusError", "response.status_code"),
)


def is_provider_error(exc: BaseException) -> bool:
    """Whether ``exc`` justifies falling back to the next provider.

    The exception and its ``__cause__`` chain are inspected, because LangChain
    integrations re-raise SDK errors as their own types (``raise ... from e``).

    Args:
        exc: The exception raised by a provider call.

    Returns:
        True for transient provider failures, False for errors to propagate.
    """
    return any(_is_transient(e) for e in _cause_chain(exc))


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait before retrying, from its answer's headers.

    Reads ``retry-after-ms`` (OpenAI), then ``Retry-After`` (seconds or an HTTP date,
    RFC 9110 section 10.2.3) of the HTTP response attached to ``exc`` or its causes, and
    Gemini's ``google.rpc.RetryInfo`` ``retryDelay`` (e.g. ``"3s"``) in the error body.

    Args:
        exc: The exception raised by a provider call.

    Returns:
        Seconds (>= 0), or None when the answer gave no usable header.
    """
    for error in _cause_chain(exc):
        if (delay := _google_retry_delay(error)) is not None:
            return delay
        headers = getattr(getattr(error, "response", None), "headers", None)
        if headers is None or not hasattr(headers, "get"):
            continue
        if (millis := _number(headers.get("retry-after-ms"))) is not None:
            return millis / 1000
        value = headers.get("retry-after")
        if value is None:
            continue
        if (seconds := _number(value)) is not None:
            return seconds
        return _seconds_until(value)
    return None


def _google_retry_delay(error: BaseException) -> float | None:
    """``retryDelay`` of a RetryInfo detail in a google-genai ``APIError`` body."""
    body = getattr(error, "details", None)
    details = body.get("error", {}).get("details", []) if isinstance(body, dict) else []
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            match = _GOOGLE_DELAY.match(str(detail.get("retryDelay", "")))
            return float(match.group(1)) if match else None
    return None


def _number(value: object) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if number >= 0 else None


def _seconds_until(http_date: str) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _cause_chain(exc: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = exc
    for _ in range(_MAX_CAUSES):
        if current is None:
            return
        yield current
        current = current.__cause__


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ProviderError | ModelFileError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, json.JSONDecodeError) or str(exc) == _NO_CHUNKS:
        return True
    if isinstance(exc, ModelError) and exc.is_retryable:
        return True
    if any(_is_instance(exc, module, name) for module, name in _MALFORMED_OR_UNREACHABLE):
        return True
    status = _status_code(exc)
    return status is not None and (status in _TRANSIENT_STATUS or status >= 500)


def _status_code(exc: BaseException) -> int | None:
    """HTTP status of an SDK status error (``None`` for other exceptions)."""
    for module, name, attribute in _STATUS_ERRORS:
        if _is_instance(exc, module, name):
            status = attrgetter(attribute)(exc)
            return status if isinstance(status, int) else None
    return None


def _is_instance(exc: BaseException, module_name: str, class_name: str) -> bool:
    module = sys.modules.get(module_name)
    return module is not None and isinstance(exc, getattr(module, class_name))
