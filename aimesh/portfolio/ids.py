"""Client ids in free text: where a question, a result or an answer names a client.

One rule for every reader (the answer check, the specialists' given-id guard): an id counts
as a whole token, never as part of a figure.
"""

import re
from collections.abc import Collection

from aimesh.errors import UnknownClientError
from aimesh.portfolio.book import ClientBook

SAMPLE_LIKE = re.compile(r"\bC\d{1,6}\b", re.IGNORECASE)
"""How people write a sample client id (``C42``, ``c00042``)."""


def find_ids(text: str, ids: Collection[str]) -> list[re.Match[str]]:
    """Where ``text`` names one of ``ids``, in order (the longest id where two overlap).

    An id counts as a whole token, never as part of a figure: ``1042`` is not found in
    ``$1,042.00`` nor in ``10.42%``. Ids may contain spaces and dashes (``Acme Corp``), and
    follow a comma (``C00042,C00050``) unless they start with a digit.
    """
    found: list[re.Match[str]] = []
    for client_id in sorted(ids, key=len, reverse=True):
        before = r"(?<![\w.,$-])" if client_id[:1].isdigit() else r"(?<![\w.$-])"
        pattern = rf"{before}{re.escape(client_id)}(?![\w%-]|[.,]\d)"
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


def ids_in(text: str, book: ClientBook) -> list[str]:
    """The client ids of ``book`` that ``text`` names, in the book's spelling.

    For the sample book, ids written short (``C42``) count too.
    """
    found = named_ids(text, book.ids())
    if book.sample:
        for written in SAMPLE_LIKE.findall(text):
            try:
                found.append(book.lookup(written))
            except UnknownClientError:
                continue
    return list(dict.fromkeys(found))
