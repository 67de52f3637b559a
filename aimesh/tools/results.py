"""What every tool result carries besides its numbers: where the numbers came from.

The provenance of the tools that still read the packaged portfolio through ``MLService``;
client-book results carry :class:`aimesh.portfolio.results.Provenance` instead.
"""

from typing import Any

from pydantic import BaseModel, Field

from aimesh.ml.registry import Trained


class Provenance(BaseModel):
    """The model and data behind a tool result.

    Attributes:
        model: Registry name of the model (``churn``, ``billing-anomaly``).
        model_version: The model card's version.
        dataset: File the model was trained on.
        data_sha256: SHA-256 of that file.
        method: One line on how the figures were computed.
        notes: What happened to the model on this load (e.g. retrained: file unreadable).
    """

    model: str
    model_version: str
    dataset: str
    data_sha256: str
    method: str = Field(description="How the figures were computed.")
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, trained: Trained[Any], method: str) -> "Provenance":
        """Provenance of a figure computed with ``trained`` (its card and load notes)."""
        card = trained.card
        return cls(
            model=card.name,
            model_version=card.version,
            dataset=card.dataset,
            data_sha256=card.data_sha256,
            method=method,
            notes=trained.notes,
        )

    def render(self) -> str:
        """One line naming model, version and data, for the LLM and the user."""
        notes = "".join(f" Note: {n}." for n in self.notes)
        return (
            f"Source: model {self.model_version} ({self.method}), "
            f"trained on {self.dataset} (sha256 {self.data_sha256[:12]}).{notes}"
        )
