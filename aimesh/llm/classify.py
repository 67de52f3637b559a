"""Tell provider failures (worth trying the next provider) from programming errors.

A provider failure is an HTTP 408/409/429/5xx answer (Anthropic's 529 included), a
timeout, a connection error, a malformed or empty response, or a ``ProviderError`` /
``ModelFileError`` from the local model. Everything else (``TypeError``, ``ValueError``
from our code, 400/401/403/404 answers...) is a bug or a configuration problem that
another provider would not fix, so it propagates.
"""

import sys
from collections.abc import Iterator
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
)
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
