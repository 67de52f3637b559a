"""The real LangChain integrations and SDKs, built by ``build_providers``, against the
wire-level fake providers: answers, usage, tool calls, streams, and the fault matrix.

The fault table records which exception each SDK raises for each failure: the provider
chain must classify every one of them as a provider error.
"""

import json
from collections.abc import Sequence
from functools import reduce
from operator import add
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import httpx
import httpx2
import pytest
from google.genai import errors as genai_errors
from langchain_core.exceptions import (
    ModelAPIError,
    ModelConnectionError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    BaseMessageChunk,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool

from aimesh.llm.providers import build_providers
from tests.wire.fake_providers import PARTIAL, FakeProviders, Fault, Reply

PROVIDERS = ["anthropic", "openai", "google"]
AUTH = {
    "anthropic": ("authorization", "Bearer fake-anthropic-key"),
    "openai": ("authorization", "Bearer fake-openai-key"),
    "google": ("x-goog-api-key", "fake-google-key"),
}
PATH = {
    "anthropic": "/anthropic/v1/messages",
    "openai": "/openai/v1/chat/completions",
    "google": "/google/v1/models/{model}:{method}",  # google-genai 3.x (v1beta before)
}
REPORTED_MODEL = {
    "anthropic": "{model}-20250101",
    "openai": "{model}-2025-01-01",
    "google": "{model}",
}
HANG = 3.0  # seconds a hanging fake waits; the settings time out after 0.5 s

USAGE = Reply(
    text="Three clients are at high churn risk.",
    input_tokens=1200,
    output_tokens=80,
    cached_tokens=1000,
    cache_write_tokens=50,  # Anthropic only
    reasoning_tokens=30,
)


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def chat_model(fake: FakeProviders, provider: str, home: Path) -> tuple[BaseChatModel, str]:
    """The provider's default link as the chain builds it, and its model name.

    A whole attempt may take 1 s: Gemini's only timeout, shorter than a hang (``HANG``).
    """
    settings = fake.settings(home, providers=[provider], request_timeout_s=1.0)
    [link] = [p for p in build_providers(settings) if p.default]
    return link.chat_model, link.model


def joined(chunks: Sequence[BaseMessage]) -> BaseMessage:
    """Stream chunks added up, as LangChain merges them."""
    return reduce(add, chunks)


def assert_usage(message: AIMessage, provider: str) -> None:
    usage = message.usage_metadata
    assert usage is not None
    assert (usage["input_tokens"], usage["output_tokens"]) == (1200, 80)
    assert usage["total_tokens"] == 1280
    assert usage.get("input_token_details", {}).get("cache_read") == 1000
    assert usage.get("output_token_details", {}).get("reasoning") == 30
    if provider == "anthropic":
        assert usage.get("input_token_details", {}).get("cache_creation") == 50


@pytest.mark.parametrize("sync", [True, False], ids=["invoke", "ainvoke"])
async def test_invoke_returns_text_usage_and_reported_model(
    fake_providers: FakeProviders, provider: str, sync: bool, tmp_path: Path
) -> None:
    fake_providers.script(provider, USAGE)
    model, name = chat_model(fake_providers, provider, tmp_path)

    answer = model.invoke("Who may churn?") if sync else await model.ainvoke("Who may churn?")

    assert answer.text == USAGE.text
    assert_usage(answer, provider)
    assert answer.response_metadata["model_name"] == REPORTED_MODEL[provider].format(model=name)
    [request] = fake_providers.requests(provider)
    assert request.path == PATH[provider].format(model=name, method="generateContent")
    assert request.headers["host"] == f"127.0.0.1:{fake_providers.port}"
    header, value = AUTH[provider]
    assert request.headers[header] == value
    assert not request.stream


async def test_stream_yields_the_text_in_pieces_and_the_usage(
    fake_providers: FakeProviders, provider: str, tmp_path: Path
) -> None:
    fake_providers.script(provider, USAGE)
    model, name = chat_model(fake_providers, provider, tmp_path)

    chunks = [chunk async for chunk in model.astream("Who may churn?")]

    assert len([c for c in chunks if c.text]) >= 2  # really streamed, not one block
    full = joined(chunks)
    assert isinstance(full, AIMessage)
    assert full.text == USAGE.text
    assert_usage(full, provider)
    [request] = fake_providers.requests(provider)
    assert request.stream
    assert request.path == PATH[provider].format(model=name, method="streamGenerateContent")
    if provider == "openai":
        assert request.body["stream_options"] == {"include_usage": True}
    if provider == "google":
        assert request.query == {"alt": ["sse"]}


@tool
def open_tickets(client_id: str) -> int:
    """Number of open support tickets of a client."""
    raise AssertionError("the test answers the tool call itself")


def tool_result_sent(provider: str, body: dict[str, Any]) -> Any:
    """The tool result the second request carries, as the provider's protocol puts it."""
    if provider == "anthropic":
        [block] = body["messages"][-1]["content"]
        return block["tool_use_id"], block["content"]
    if provider == "openai":
        message = body["messages"][-1]
        return message["tool_call_id"], message["content"]
    [part] = body["contents"][-1]["parts"]
    return part["functionResponse"]["name"], part["functionResponse"]["response"]


@pytest.mark.parametrize("streamed", [False, True], ids=["ainvoke", "astream"])
async def test_tool_call_round_trip(
    fake_providers: FakeProviders, provider: str, streamed: bool, tmp_path: Path
) -> None:
    fake_providers.script(
        provider,
        Reply(tool_name="open_tickets", tool_args={"client_id": "C-42"}),
        Reply(text="C-42 has 7 open tickets."),
    )
    model, _ = chat_model(fake_providers, provider, tmp_path)
    bound = model.bind_tools([open_tickets])
    question = HumanMessage("How many tickets does C-42 have open?")

    if streamed:
        call_message = joined([chunk async for chunk in bound.astream([question])])
    else:
        call_message = await bound.ainvoke([question])
    assert isinstance(call_message, AIMessage)
    [call] = call_message.tool_calls
    assert (call["name"], call["args"]) == ("open_tickets", {"client_id": "C-42"})
    result = ToolMessage("7", tool_call_id=call["id"], name="open_tickets")
    answer = await bound.ainvoke([question, call_message, result])

    assert answer.text == "C-42 has 7 open tickets."
    first, second = fake_providers.requests(provider)
    assert "open_tickets" in json.dumps(first.body)  # the tool was declared
    expected_key = "open_tickets" if provider == "google" else call["id"]
    key, content = tool_result_sent(provider, second.body)
    assert key == expected_key
    assert "7" in json.dumps(content)


def same(error: type[BaseException]) -> dict[str, type[BaseException]]:
    return dict.fromkeys(PROVIDERS, error)


# What each SDK raises, through its LangChain integration, for each fault (async calls).
FAULTS: dict[str, tuple[Fault, dict[str, type[BaseException]]]] = {
    "429-retry-after": (Fault.http(429, retry_after=3), same(ModelRateLimitError)),
    "429": (Fault.http(429), same(ModelRateLimitError)),
    "500": (Fault.http(500), same(ModelAPIError)),
    "503": (Fault.http(503), same(ModelAPIError)),
    "529": (Fault.http(529), same(ModelAPIError) | {"anthropic": anthropic.OverloadedError}),
    "hang-before-headers": (
        Fault.hang_before_headers(HANG),
        same(ModelTimeoutError) | {"google": TimeoutError},  # aiohttp's, not wrapped
    ),
    "hang-mid-stream": (
        Fault.hang_mid_stream(HANG),
        same(ModelTimeoutError) | {"google": TimeoutError},
    ),
    "reset": (Fault.reset(), same(ModelConnectionError) | {"google": aiohttp.ClientOSError}),
    "malformed-json": (Fault.malformed_json(), same(json.JSONDecodeError)),
    "cut-stream": (
        Fault.cut_stream(),
        same(ModelConnectionError) | {"google": aiohttp.ClientPayloadError},
    ),
}
# Where a streamed call fails differently (errors while iterating are not wrapped).
STREAMED: dict[str, tuple[Fault, dict[str, type[BaseException]]]] = {
    "hang-mid-stream": (FAULTS["hang-mid-stream"][0], {"anthropic": httpx2.ReadTimeout}),
    "malformed-json": (  # a JSON body where SSE was asked: no events at all
        FAULTS["malformed-json"][0],
        same(ValueError) | {"google": genai_errors.UnknownApiResponseError},
    ),
    "malformed-sse": (
        Fault.malformed_sse(),
        same(json.JSONDecodeError) | {"google": genai_errors.UnknownApiResponseError},
    ),
    "cut-stream": (FAULTS["cut-stream"][0], {"anthropic": httpx2.RemoteProtocolError}),
}
PARTIAL_CASES = {"hang-mid-stream", "cut-stream", "malformed-sse"}


def expected_error(case: str, provider: str, streamed: bool) -> type[BaseException]:
    errors = FAULTS.get(case, (None, {}))[1]
    if streamed:
        errors = errors | STREAMED.get(case, (None, {}))[1]
    return errors[provider]


@pytest.mark.parametrize(
    ("case", "streamed"),
    [(case, False) for case in FAULTS] + [(case, True) for case in FAULTS.keys() | STREAMED],
)
async def test_fault_raises_the_sdk_error_after_exactly_one_request(
    fake_providers: FakeProviders, provider: str, case: str, streamed: bool, tmp_path: Path
) -> None:
    fault = (FAULTS.get(case) or STREAMED[case])[0]
    fake_providers.script(provider, fault)
    model, _ = chat_model(fake_providers, provider, tmp_path)
    received: list[BaseMessageChunk] = []

    with pytest.raises(expected_error(case, provider, streamed)) as caught:
        if streamed:
            async for chunk in model.astream("Who may churn?"):
                received.append(chunk)
        else:
            await model.ainvoke("Who may churn?")

    assert len(fake_providers.requests(provider)) == 1  # no SDK retry
    partial = "".join(chunk.text for chunk in received)
    if streamed and case in PARTIAL_CASES:  # the client saw a beginning, never the end
        assert partial and PARTIAL.text.startswith(partial) and partial != PARTIAL.text
    else:
        assert partial == ""
    if case == "429-retry-after":
        assert retry_delay(provider, caught.value) == "3"


def retry_delay(provider: str, error: BaseException) -> str:
    """The retry delay as the provider told it: a header, or Gemini's RetryInfo detail."""
    if provider == "google":
        details = error.__cause__.details["error"]["details"]  # type: ignore[union-attr]
        [info] = [d for d in details if d["@type"].endswith("google.rpc.RetryInfo")]
        return str(info["retryDelay"]).removesuffix("s")
    return str(error.response.headers["retry-after"])  # type: ignore[attr-defined]


async def test_unscripted_request_answers_500_and_is_recorded(
    fake_providers: FakeProviders, provider: str, tmp_path: Path
) -> None:
    model, _ = chat_model(fake_providers, provider, tmp_path)

    with pytest.raises(ModelAPIError):
        await model.ainvoke("Nothing is scripted.")

    assert fake_providers.errors == [
        f"fake {provider}: unscripted request to {fake_providers.requests(provider)[0].path}"
    ]
    fake_providers.errors.clear()  # seen: the fixture would fail the test otherwise


def test_unknown_path_answers_404_and_is_recorded(fake_providers: FakeProviders) -> None:
    response = httpx.post(f"http://127.0.0.1:{fake_providers.port}/v1/other", json={})

    assert response.status_code == 404
    assert [r.provider for r in fake_providers.requests()] == [None]
    assert fake_providers.errors == ["no fake provider serves /v1/other"]
    fake_providers.errors.clear()


def test_script_refuses_unknown_providers_and_items(fake_providers: FakeProviders) -> None:
    with pytest.raises(ValueError, match="provider must be one of"):
        fake_providers.script("mistral", Reply(text="hi"))
    with pytest.raises(TypeError, match="Reply or Fault"):
        fake_providers.script("openai", "hi")  # type: ignore[arg-type]
