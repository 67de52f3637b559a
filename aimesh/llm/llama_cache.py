"""llama-cpp-python's RAM prompt cache, without the logits it does not use.

``Llama.save_state`` copies the logits array (``n_batch x n_vocab`` float32: 512 x 151,936
x 4 B = 311 MB for Qwen2.5) into every cached state, and ``LlamaRAMCache`` counts only the
KV state (about 28 KB a token) against its capacity. So a 2,048 MB cache held some twenty
states and 6+ GB of logits more than it counted (a routing bench process reached 21 GB
resident). Without ``logits_all`` those logits are never read: sampling runs in llama.cpp's
sampler and a restored state is decoded again before sampling. The cache keeps one row, which
``Llama.load_state`` broadcasts back into place. The local model never sets ``logits_all``
(with it, prompt logprobs of a restored prefix would read that one row).

Imported only when the local model loads (it imports llama_cpp).
"""

from collections.abc import Sequence

from llama_cpp import LlamaRAMCache, LlamaState


class PromptCache(LlamaRAMCache):
    """A :class:`llama_cpp.LlamaRAMCache` whose states keep one row of logits.

    Args:
        capacity_bytes: Most bytes of KV state kept; the oldest states go first.
    """

    def __setitem__(self, key: Sequence[int], value: LlamaState) -> None:
        """Cache ``value`` for the token prefix ``key``, with its last row of logits only."""
        value.scores = value.scores[-1:].copy()
        super().__setitem__(key, value)
