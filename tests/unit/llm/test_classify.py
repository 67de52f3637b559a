import anthropic
import httpx
import httpx2
import openai
import pytest
from google.genai import errors as genai_errors
from langchain_anthropic.chat_models import AnthropicOverloadedError, AnthropicRateLimitError
from langchain_google_genai.chat_models import (
    ChatGoogleGenerativeAIError,
    GoogleAPIError,
    GoogleRateLimitError,
)
from langchain_openai.chat_models.base import OpenAIAPIError, OpenAITimeoutError

from aimesh.errors import ModelFileError, ProviderError
from aimesh.llm.classify import is_provider_error

REQUEST = httpx2.Request("POST", "https://api.example.com/v1/messages")


def response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=REQUEST)


def anthropic_status(status: int) -> anthropic.APIStatusError:
    return anthropic.APIStatusError(f"HTTP {status}", response=response(status), body=None)


def openai_status(status: int) -> openai.APIStatusError:
    return openai.APIStatusError(f"HTTP {status}", response=response(status), body=None)


def google(status: int) -> genai_errors.APIError:
    body = {"error": {"code": status, "message": "boom", "status": "X"}}
    kind = genai_errors.ServerError if status >= 500 else genai_errors.ClientError
    return kind(status, body)


def caused(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


PROVIDER_ERRORS = {
    "anthropic 408": anthropic_status(408),
    "anthropic 409": anthropic_status(409),
    "anthropic 429": anthropic.RateLimitError("slow down", response=response(429), body=None),
    "anthropic 500": anthropic.InternalServerError("oops", response=response(500), body=None),
    "anthropic 529": anthropic.OverloadedError("overloaded", response=response(529), body=None),
    "anthropic timeout": anthropic.APITimeoutError(REQUEST),
    "anthropic connection": anthropic.APIConnectionError(request=REQUEST),
    "anthropic malformed": anthropic.APIResponseValidationError(response(200), body="<html>"),
    "langchain-anthropic 529": AnthropicOverloadedError("x", response=response(529), body=None),
    "langchain-anthropic 429": AnthropicRateLimitError("x", response=response(429), body=None),
    "openai 429": openai.RateLimitError("slow down", response=response(429), body=None),
    "openai 503": openai.InternalServerError("down", response=response(503), body=None),
    "openai 504": openai_status(504),
    "openai timeout": openai.APITimeoutError(REQUEST),
    "openai connection": openai.APIConnectionError(request=REQUEST),
    "openai malformed": openai.APIResponseValidationError(response(200), body=None),
    "langchain-openai 500": OpenAIAPIError("x", response=response(500), body=None),
    "langchain-openai timeout": OpenAITimeoutError(REQUEST),
    "google 503": google(503),
    "google 429": google(429),
    "google 408 wrapped": caused(ChatGoogleGenerativeAIError("Error calling model"), google(408)),
    "langchain-google 429": GoogleRateLimitError("rate limited"),
    "langchain-google 500": GoogleAPIError(500, {"error": {"code": 500, "status": "INTERNAL"}}),
    "google malformed": genai_errors.UnknownApiResponseError("not JSON"),
    "httpx read timeout": httpx.ReadTimeout("timed out"),
    "httpx connect": httpx.ConnectError("refused"),
    "httpx 502": httpx.HTTPStatusError(
        "bad gateway",
        request=httpx.Request("GET", "http://x"),
        response=httpx.Response(502, request=httpx.Request("GET", "http://x")),
    ),
    "httpx2 remote protocol": httpx2.RemoteProtocolError("peer closed"),
    "builtin timeout": TimeoutError(),
    "builtin connection reset": ConnectionResetError(),
    "local provider error": ProviderError("llama decode failed"),
    "local model file": ModelFileError("checksum mismatch"),
}

PROGRAMMING_ERRORS = {
    "TypeError": TypeError("bad argument"),
    "ValueError": ValueError("bad value"),
    "KeyError": KeyError("missing"),
    "AssertionError": AssertionError("script ran out"),
    "anthropic 400": anthropic.BadRequestError("bad", response=response(400), body=None),
    "anthropic 401": anthropic.AuthenticationError("no key", response=response(401), body=None),
    "openai 404": openai.NotFoundError("no model", response=response(404), body=None),
    "openai 422": openai_status(422),
    "google 400": google(400),
    "google 403 wrapped": caused(ChatGoogleGenerativeAIError("denied"), google(403)),
    "ValueError from a TypeError": caused(ValueError("x"), TypeError("y")),
}


@pytest.mark.parametrize("exc", PROVIDER_ERRORS.values(), ids=PROVIDER_ERRORS.keys())
def test_provider_errors_are_recognised(exc: BaseException) -> None:
    assert is_provider_error(exc)


@pytest.mark.parametrize("exc", PROGRAMMING_ERRORS.values(), ids=PROGRAMMING_ERRORS.keys())
def test_other_errors_are_not(exc: BaseException) -> None:
    assert not is_provider_error(exc)


def test_a_cause_cycle_terminates() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert not is_provider_error(first)
