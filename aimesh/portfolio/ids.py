"""Client ids in free text: where a question, a result or an answer names a client.

One rule for every reader (the answer check, the specialists' given-id guard): an id counts
as a whole token, never as part of a figure.
"""

import re
from collections.abc import Collection


def find_ids(text: str, ids: Collection[str]) -> list[re.Match[str]]:
    """Where ``text`` names one of ``ids``, in order (the longest id where two overlap).

    An id counts as a whole token, never as part of a figure: ``1042`` is not found in
    ``$1,042.00`` nor in ``10.42%``. Ids may contain spaces and dashes (``Acme Corp``).
    """
    found: list[re.Match[str]] = []
    for client_id in sorted(ids, key=len, reverse=True):
        pattern = rf"(?<![\w.,$-]){re.escape(client_id)}(?![\w%-]|[.,]\d)"
        for match in re.finditer(pattern, text, re.IGNORECASE):
            if all(match.end() <= m.start() or match.start() >= m.end() for m in found):
                found.append(match)
    return sorted(found, key=lambda m: m.start())


def named_ids(text: str, ids: Collection[str]) -> list[str]:
    """The ids of ``ids`` that ``text`` names (:func:`find_ids`), as ``ids`` spell them.

    Only ids found in ``text`` as plain substrings are tried, so a book of thousands of
    clients costs one substring test per id.
    """
    lowered = text.lower()
    candidates = [i for i in ids if i.lower() in lowered]
    spelled = {i.lower(): i for i in candidates}
    return list(dict.fromkeys(spelled[m.group().lower()] for m in find_ids(text, candidates)))
