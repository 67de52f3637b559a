import numpy as np
from llama_cpp import LlamaState

from aimesh.llm.llama_cache import PromptCache


def state(n_tokens: int) -> LlamaState:
    scores = np.arange(512 * 8, dtype=np.single).reshape(512, 8)
    return LlamaState(
        input_ids=np.arange(n_tokens, dtype=np.intc),
        scores=scores,
        n_tokens=n_tokens,
        llama_state=b"kv" * 50,
        llama_state_size=100,
        seed=0,
    )


def test_a_cached_state_keeps_one_row_of_logits_not_n_batch():
    cache = PromptCache(capacity_bytes=1_000)
    cache[(1, 2, 3)] = state(3)
    kept = cache[(1, 2, 3, 4)]  # the longest cached prefix
    assert kept.scores.shape == (1, 8) and kept.scores[0, 0] == 511 * 8
    assert cache.cache_size == 100


def test_the_oldest_states_go_when_the_capacity_is_reached():
    cache = PromptCache(capacity_bytes=250)
    for first in range(3):
        cache[(first, 9)] = state(2)
    assert (0, 9) not in cache and (2, 9) in cache
