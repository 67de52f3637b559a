"""One model call attempt through the provider chain, as one typed record.

The chain builds a :class:`ModelAttempt` as each attempt ends (success or failure) and
dispatches it as the ``model_attempt`` custom event (:data:`aimesh.events.MODEL_ATTEMPT`);
the ledger writes it (:mod:`aimesh.billing.ledger`), budgets bill it, and its JSON form
(:meth:`ModelAttempt.wire`) is in the chain's ``response_metadata["attempts"]`` and the
``agent`` events clients receive.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_serializer,
    model_validator,
)

from aimesh.config import ProviderName

Text = Annotated[str, StringConstraints(min_length=1)]
Tokens = Annotated[int, Field(ge=0)] | None
USD = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class ModelAttempt(BaseModel):
    """One attempt of a chain call on one link (``provider/model``), priced.

    Strict: every field is required, with exactly its type (no coercion: ``"12"`` is not a
    token count, a float is not a USD amount); unknown fields are refused.

    Attributes:
        id: Attempt id, 32 lowercase hex digits.
        at: When the attempt started, an aware datetime (kept in UTC).
        provider: ``anthropic``, ``openai``, ``google`` or ``local``.
        model_requested: The configured model the chain asked for.
        model_used: The model the provider reported (a dated variant); None if none.
        status: ``success`` or ``error``.
        error: ``"ExcType: message"`` of a failed attempt; None when it succeeded.
        streamed: Whether the attempt streamed.
        input_tokens: Tokens as the provider reported them (cached ones included); None =
            not reported.
        output_tokens: As above, reasoning included.
        cached_tokens: As above.
        reasoning_tokens: As above.
        cost_usd: USD priced by genai-prices (:func:`aimesh.llm.cost.price_usd`); None =
            unknown (never 0 for unknown); exactly 0 for the local model.
        price_source: ``"genai-prices X.Y.Z"``, or None when nothing was priced.
        latency_s: Seconds from the attempt's start to its end.

    Raises:
        pydantic.ValidationError: On construction, naming every bad field.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    at: Annotated[AwareDatetime, AfterValidator(lambda at: at.astimezone(UTC))]
    provider: ProviderName
    model_requested: Text
    model_used: Text | None
    status: Literal["success", "error"]
    error: Text | None
    streamed: bool
    input_tokens: Tokens
    output_tokens: Tokens
    cached_tokens: Tokens
    reasoning_tokens: Tokens
    cost_usd: USD | None
    price_source: Text | None
    latency_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _error_matches_status(self) -> "ModelAttempt":
        if (self.status == "error") != (self.error is not None):
            raise ValueError(
                f"error: a status {self.status!r} attempt must have "
                f"{'an error message' if self.status == 'error' else 'error null'}"
            )
        return self

    @field_serializer("at", when_used="json")
    def _iso(self, at: datetime) -> str:
        return at.isoformat()

    def wire(self) -> dict[str, Any]:
        """The attempt as JSON-safe data (the chain's ``response_metadata``, events).

        ``at`` is ISO-8601 (``+00:00``), ``cost_usd`` a decimal string or None; the other
        fields are as they are.
        """
        return self.model_dump(mode="json")
