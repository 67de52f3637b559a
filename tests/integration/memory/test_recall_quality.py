"""Recall quality of the shared memory on labelled MSP sets, and tenant isolation.

``recall_set.json`` holds 31 notes about MSP work and 28 questions, each phrased apart from
its one relevant note (written by hand, not tuned to the model). ``recall_heldout.json`` (30
notes, 25 questions) was written later, independently, by someone who had seen neither the
first set nor the code, after the acronym glossary (:mod:`aimesh.memory.glossary`) was
measured on the first set: it checks that the glossary was not fitted to it. Every note is
stored in one network's memory (embedded Redis, Chroma in a temporary directory, the
packaged MiniLM); the relevant note must be among the top 3 recalled for at least 80% of
the questions (the issue's target).
"""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aimesh.memory.embeddings import embedding_function
from aimesh.memory.items import MemoryScope, Source
from aimesh.memory.redis_store import RedisMemory
from aimesh.memory.semantic import SemanticMemory, open_chroma
from aimesh.memory.shared import SharedMemory
from aimesh.store.redis import open_redis

RECALL_SETS = ["recall_set.json", "recall_heldout.json"]
TOP_K = 3
TARGET = 0.8
"""The issue's target share of questions with the relevant note in the top 3.

Measured (recall@3): recall_set 22/28 without the glossary, 24/28 with it; recall_heldout
22/25 without, 23/25 with.
"""

SOURCE = Source(kind="user", name="recall-set")


@pytest.fixture(scope="module", params=RECALL_SETS)
def recall_set(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The labelled notes and questions of one set."""
    return json.loads(Path(__file__).with_name(request.param).read_text())


@pytest.fixture(scope="module")
def embed() -> Any:
    """The packaged embedding model, loaded once for the module (seconds)."""
    return embedding_function()


@pytest.fixture
async def memory(tmp_path: Path, embed: Any) -> AsyncIterator[SharedMemory]:
    """Shared memory on an embedded Redis and a Chroma PersistentClient, both in ``tmp_path``."""
    async with open_redis(None, tmp_path) as client:
        yield SharedMemory(
            RedisMemory(client),
            lambda: SemanticMemory(open_chroma(None, str(tmp_path / "chroma")), embed),
        )


async def store_notes(
    memory: SharedMemory, scope: MemoryScope, notes: list[dict[str, Any]]
) -> dict[str, str]:
    """Store every note in ``scope``; returns the note id of each stored item id."""
    ids: dict[str, str] = {}
    for note in notes:
        item = await memory.add(scope, note["type"], note["content"], SOURCE)
        ids[item.id] = note["id"]
    return ids


async def test_relevant_note_is_in_top_3_for_at_least_80_percent_of_questions(
    memory: SharedMemory, recall_set: dict[str, Any]
) -> None:
    scope = MemoryScope("msp-recall", "net-1")
    note_of = await store_notes(memory, scope, recall_set["notes"])
    questions = recall_set["questions"]

    top1, top3, missed = 0, 0, []
    for q in questions:
        recalled = await memory.recall(scope, q["question"], limit=TOP_K)
        ranked = [note_of[r.item.id] for r in recalled]
        assert len(ranked) == TOP_K
        if ranked[0] == q["relevant"]:
            top1 += 1
        if q["relevant"] in ranked:
            top3 += 1
        else:
            missed.append(f"{q['question']!r}: wanted {q['relevant']}, got {ranked}")

    n = len(questions)
    print(f"\nrecall@1 {top1}/{n} ({top1 / n:.0%}), recall@3 {top3}/{n} ({top3 / n:.0%})")
    print("\n".join(f"missed {m}" for m in missed))
    assert top3 >= TARGET * n, (
        f"relevant note in the top {TOP_K} for {top3}/{n} questions, below {TARGET:.0%}; "
        "missed:\n" + "\n".join(missed)
    )


async def test_a_tenant_never_recalls_another_tenants_items(
    memory: SharedMemory, recall_set: dict[str, Any]
) -> None:
    first, second = MemoryScope("msp-a", "net-1"), MemoryScope("msp-b", "net-1")
    first_ids = set(await store_notes(memory, first, recall_set["notes"]))
    second_ids = set(await store_notes(memory, second, recall_set["notes"]))
    assert not first_ids & second_ids

    for q in recall_set["questions"]:
        for scope, own, other in ((first, first_ids, second_ids), (second, second_ids, first_ids)):
            recalled = await memory.recall(scope, q["question"], limit=TOP_K)
            got = {r.item.id for r in recalled}
            assert len(got) == TOP_K
            assert got <= own, f"{scope.tenant} recalled foreign ids {got - own}"
            assert not got & other
            assert all(r.item.tenant == scope.tenant for r in recalled)
