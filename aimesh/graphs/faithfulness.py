"""Faithfulness check: an answer's wording must agree with the findings it cites.

The number check (:mod:`aimesh.graphs.grounding`) makes every figure come from a result;
these rules make the answer say what the findings say (:class:`~aimesh.portfolio.wording.
Finding`, whose ``facts`` hold the direction words computed by code):

- **figures**: in a clause about one client, a figure of another client's finding (and of
  neither this client's finding, the results' other lines nor the question) is misplaced;
  so is a client's figure in a clause about no client ("the top 10% have 87.9%");
- **directions**: ``high``/``low``/``moderate`` next to a churn word, ``short``/``long``/
  ``high``/``low`` next to a feature, ``raises``/``lowers`` (and synonyms) after a feature
  and before a churn word, ``increase``/``decrease`` of churn where no feature is named
  (a price change's effect), a price ``raise``/``cut``/``keep`` and one client's billing
  ``out of line``/``anomalous`` or ``in line``/``correctly`` must match the facts;
- **unscored clients**: a client id of the book named in the answer must appear in a result
  or in the question.

A clause is the part of a sentence from one client id to the next; a sentence naming no
client is about the client last named on its line, else about the only client of the
findings, else about the results' non-client lines (a segment). Each problem is a sentence
the model can act on.
"""

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from aimesh.graphs.grounding import numbers_in, readings
from aimesh.portfolio.ids import find_ids
from aimesh.portfolio.wording import (
    BILLING,
    CHURN,
    CHURN_CHANGE,
    PRICE,
    Finding,
    level_key,
    spoken,
)

SENTENCE = re.compile(r"(?<=[.!?;])\s+")
ID_TOKEN = re.compile(r"[\w-]+")
CHURN_WORDS = frozenset(
    {"churn", "churners", "risk", "likelihood", "probability", "chance", "likely"}
)
CHURN_LEVELS = {"high": "high", "low": "low", "moderate": "moderate", "medium": "moderate"}
FEATURE_LEVELS = {"high": "high", "long": "high", "low": "low", "short": "low"}
RAISING = frozenset(
    {"raise", "raises", "raised", "raising", "increase", "increases", "increased", "increasing"}
    | {"rise", "rises", "rising", "rose"}
)
LOWERING = frozenset(
    {"lower", "lowers", "lowered", "lowering", "reduce", "reduces", "reduced", "reducing"}
    | {"decrease", "decreases", "decreased", "decreasing", "fall", "falls", "falling", "fell"}
)
PRICE_NOUNS = frozenset({"price", "prices", "pricing"})
PRICE_MOVES = {
    **dict.fromkeys(["raise", "raises", "raising", "raised", "increase", "increases"], "raise"),
    **dict.fromkeys(["increasing", "increased", "hike"], "raise"),
    **dict.fromkeys(["cut", "cuts", "cutting", "reduce", "reduces", "reducing"], "cut"),
    **dict.fromkeys(["reduced", "reduction", "lower", "lowers", "lowering"], "cut"),
    **dict.fromkeys(["lowered", "decrease", "decreases", "decreasing", "discount"], "cut"),
    **dict.fromkeys(["keep", "keeping", "unchanged", "maintain"], "keep"),
}
BILLING_VERDICTS = {"line": "", "anomalous": "out of line", "correctly": "in line"}
"""Words of a billing verdict; ``line`` reads ``out of line`` or ``in line`` by the words
before it."""
NEGATIONS = frozenset(
    {"not", "never", "isn", "aren", "wasn", "nor", "no", "cannot", "without", "won", "doesn"}
)
LINKS = frozenset({"in", "of", "its", "their", "the", "his", "her"})
"""Words between a verb and the churn it changes (``increase in its churn risk``)."""
WINDOW = 4
"""Most words between a direction word and what it is about (``high likelihood of churn``)."""


@dataclass
class Subject:
    """What the findings say of one client (or, with ``client_id`` None, of the segment)."""

    client_id: str | None
    facts: dict[str, str] = field(default_factory=dict)
    numbers: set[Decimal] = field(default_factory=set)

    @property
    def label(self) -> str:
        """The subject in a problem sentence: the client id, or ``the segment``."""
        return self.client_id or "the segment"


def faithfulness_problems(
    answer: str,
    findings: Sequence[Finding],
    cited: Sequence[str] = (),
    book_ids: Collection[str] = frozenset(),
) -> list[str]:
    """What the answer says that the findings do not.

    Args:
        answer: The answer's text.
        findings: Every finding of the results the answer may cite.
        cited: Other texts it may cite freely (the questions, recalled memory).
        book_ids: The client ids of the run's book.

    Returns:
        One sentence per problem, in order of appearance, without repeats.
    """
    subjects = _subjects(findings, cited)
    scored = {s for s in subjects if s is not None}
    problems = _unscored(answer, scored, cited, book_ids)
    for client_id, clause, alone in clauses(answer, scored):
        subject = subjects.get(_default(client_id, subjects))
        if subject is None:
            continue
        if alone:
            problems += _misplaced(clause, subject, subjects)
        problems += _directions(words(clause), subject)
    return list(dict.fromkeys(problems))


def clauses(answer: str, ids: Collection[str]) -> list[tuple[str | None, str, bool]]:
    """The answer cut into clauses, each with the client id it is about (None: not said).

    A sentence is cut before each client id it names after its first; a sentence naming
    none is about the client last named on its line. The flag is True when the clause's
    sentence names one client only: its figures are that client's (in "C1 and C2 have
    81.2% and 75.3%" they are not the last-named client's alone). A sentence naming none
    takes the flag of the sentence that named its client ("C1, C2 and C3 lead. Their
    probabilities are 87.9%, 86.3% and 86.0%." is about all three).
    """
    out: list[tuple[str | None, str, bool]] = []
    for line in answer.splitlines():
        current: str | None = None
        alone = True
        for sentence in SENTENCE.split(line):
            named = find_ids(sentence, ids)
            if not named:
                out.append((current, sentence, alone))
                continue
            alone = len({m.group().lower() for m in named}) == 1
            starts = [0, *(m.start() for m in named[1:]), len(sentence)]
            for match, start, end in zip(named, starts, starts[1:], strict=False):
                out.append((_canonical(match.group(), ids), sentence[start:end], alone))
            current = _canonical(named[-1].group(), ids)
    return out


def _canonical(written: str, ids: Collection[str]) -> str:
    """The id as the findings spell it (the answer may change its case)."""
    return next((i for i in ids if i.lower() == written.lower()), written)


def words(text: str) -> list[str]:
    """Lower-case words of ``text``, numbers left out (``two-year`` -> ``two``, ``year``)."""
    return re.findall(r"[a-z][a-z0-9]*", text.lower())


def _subjects(findings: Sequence[Finding], cited: Sequence[str]) -> dict[str | None, Subject]:
    """The findings merged by client; None holds the non-client lines and the cited texts."""
    subjects: dict[str | None, Subject] = {None: Subject(None)}
    for text in cited:
        subjects[None].numbers |= _readings_of(text)
    for finding in findings:
        subject = subjects.setdefault(finding.client_id, Subject(finding.client_id))
        subject.facts |= finding.facts
        subject.numbers |= _readings_of(finding.text)
    return subjects


def _readings_of(text: str) -> set[Decimal]:
    return set().union(*(readings(n) for n in numbers_in(text)))


def _default(client_id: str | None, subjects: dict[str | None, Subject]) -> str | None:
    """The clause's client.

    Else the only client of the findings when no segment line states facts too, else
    None (the segment's lines).
    """
    clients = [s for s in subjects if s is not None]
    if client_id is None and len(clients) == 1 and not subjects[None].facts:
        return clients[0]
    return client_id


def _unscored(
    answer: str, scored: Collection[str], cited: Sequence[str], book_ids: Collection[str]
) -> list[str]:
    """Book ids the answer names that no result covers and no cited text names.

    Tokens made of digits only are not taken for ids (they are figures); ids with
    spaces are found only among the results' ids.
    """
    allowed = {t.lower() for t in scored} | {
        t.lower() for text in cited for t in ID_TOKEN.findall(text)
    }
    return [
        f"you named {token}, but no result covers {token}: name only clients that appear "
        "in the results."
        for token in dict.fromkeys(ID_TOKEN.findall(answer))
        if not token.isdigit() and token in book_ids and token.lower() not in allowed
    ]


def _misplaced(clause: str, subject: Subject, subjects: dict[str | None, Subject]) -> list[str]:
    """Figures of the clause found in another client's finding and not in this one's.

    Figures of the results' non-client lines and of the cited texts may go anywhere. For
    the segment's subject (a clause naming no client), every client is another.
    """
    problems = []
    shared = subject.numbers | subjects[None].numbers
    others = [s for key, s in subjects.items() if key not in (None, subject.client_id)]
    for number in numbers_in(clause):
        value = abs(number).normalize()
        owner = next((o for o in others if value in o.numbers), None)
        if owner is not None and value not in shared:
            problems.append(
                f"you wrote {number} about {subject.label}, but it is a figure of "
                f"{owner.label}'s finding."
            )
    return problems


def _directions(tokens: list[str], subject: Subject) -> list[str]:
    """Direction words of one clause that disagree with the subject's facts."""
    mentions = _mentions(tokens, subject.facts)
    problems = []
    for i, token in enumerate(tokens):
        if NEGATIONS & set(tokens[max(i - 2, 0) : i]):
            continue  # "not low": what it is not, not a level
        if token in CHURN_LEVELS or token in FEATURE_LEVELS:
            problems += _level(tokens, i, mentions, subject)
        if token in RAISING or token in LOWERING:
            problems += _effect(tokens, i, mentions, subject)
        if token in PRICE_MOVES:
            problems += _price(tokens, i, subject)
        if token in BILLING_VERDICTS:
            problems += _billing(tokens, i, subject)
    return problems


def _mentions(tokens: list[str], facts: dict[str, str]) -> dict[int, str]:
    """Where the clause names a feature the facts know: first word's index -> feature."""
    subjects = (CHURN, PRICE, CHURN_CHANGE, BILLING)
    features = {key.removesuffix(".level") for key in facts if key not in subjects}
    found = {}
    for feature in features:
        name = spoken(feature).split()
        for i in range(len(tokens) - len(name) + 1):
            if tokens[i : i + len(name)] == name:
                found[i] = feature
    return found


def _level(tokens: list[str], i: int, mentions: dict[int, str], subject: Subject) -> list[str]:
    """A level word is about what it stands next to.

    In order: a feature named within two words after it (``high tenure``), churn within
    ``WINDOW`` words after it (``high likelihood of churn``), else the nearest feature or
    churn word within ``WINDOW`` words before it (``tenure is short``, ``risk is low``).
    """
    feature = next((mentions[j] for j in (i + 1, i + 2) if j in mentions), None)
    if feature is not None:
        return _feature_level(tokens[i], feature, subject)
    if any(_is_churn(tokens, j) for j in range(i + 1, i + 1 + WINDOW)):
        return _churn_level(tokens[i], subject)
    for j in range(i - 1, max(i - 1 - WINDOW, -1), -1):
        if j in mentions:
            return _feature_level(tokens[i], mentions[j], subject)
        if _is_churn(tokens, j):
            return _churn_level(tokens[i], subject)
    return []


def _is_churn(tokens: list[str], j: int) -> bool:
    return 0 <= j < len(tokens) and tokens[j] in CHURN_WORDS


def _churn_level(said: str, subject: Subject) -> list[str]:
    fact = subject.facts.get(CHURN)
    claim = CHURN_LEVELS.get(said)
    if fact is None or claim is None or claim == fact:
        return []
    return [
        f"you called {subject.label}'s churn risk {said}; the finding says it is {fact} "
        "for this book."
    ]


def _feature_level(said: str, feature: str, subject: Subject) -> list[str]:
    fact = subject.facts.get(level_key(feature))
    claim = FEATURE_LEVELS.get(said)
    if fact is None or claim is None or claim == FEATURE_LEVELS.get(fact):
        return []
    return [f"you called {subject.label}'s {spoken(feature)} {said}; the finding says {fact}."]


def _effect(tokens: list[str], i: int, mentions: dict[int, str], subject: Subject) -> list[str]:
    """A verb of effect: of the feature named last before it, on churn named just after.

    With no feature named before it, the verb is a change of churn itself (``a 1.2% decrease
    in churn probability``, ``churn risk would increase``): see :func:`_churn_change`.
    """
    named = [j for j in mentions if i - 1 - WINDOW <= j < i]
    if not named:
        return _churn_change(tokens, i, subject)
    if not any(_is_churn(tokens, j) for j in range(i + 1, i + 2 + WINDOW)):
        return []
    feature = mentions[max(named)]
    fact = subject.facts.get(feature)
    said = "raises" if tokens[i] in RAISING else "lowers"
    if fact is None or fact == said:
        return []
    level = subject.facts.get(level_key(feature))
    shown = f"{spoken(feature)} ({level})" if level else spoken(feature)
    return [
        f"you wrote that {spoken(feature)} {said} {subject.label}'s churn risk; the "
        f"finding says {shown}: {fact} churn risk."
    ]


def _churn_change(tokens: list[str], i: int, subject: Subject) -> list[str]:
    """A rise or fall of churn: churn is the verb's subject or object.

    Subject: a churn word one or two words before it (``churn risk would increase``,
    ``churn probability falls``). Object: a churn word right after it, or after ``in``/
    ``of`` or a determiner (``decrease in churn probability``, ``raise its churn risk``).
    Anything else is not read as a claim about churn (``the 7.1% raise keeps churn risk
    at 12.0%``, ``revenue rises while churn risk stays``); a negation up to four words
    before it is not a claim either (``without churn risk rising``).
    """
    fact = subject.facts.get(CHURN_CHANGE)
    if fact is None or NEGATIONS & set(tokens[max(i - 4, 0) : i]):
        return []
    after = tokens[i + 1 : i + 4]
    while after and after[0] in LINKS:
        after = after[1:]
    if not (_is_churn(after, 0) or any(_is_churn(tokens, j) for j in (i - 2, i - 1))):
        return []
    said = "raises" if tokens[i] in RAISING else "lowers"
    if fact == said:
        return []
    result = "leaves it unchanged" if fact == "keeps" else f"{fact} it"
    return [
        f"you wrote '{tokens[i]}' of {subject.label}'s churn risk; the finding says the "
        f"price change {result}."
    ]


def _price(tokens: list[str], i: int, subject: Subject) -> list[str]:
    """A price move word next to a price noun (not one about churn just after it)."""
    near = [*range(i - 2, i), *range(i + 1, i + 1 + WINDOW)]
    if not any(0 <= j < len(tokens) and tokens[j] in PRICE_NOUNS for j in near):
        return []
    if any(_is_churn(tokens, j) for j in range(i + 1, i + 1 + WINDOW)):
        return []
    fact = subject.facts.get(PRICE)
    said = PRICE_MOVES[tokens[i]]
    if fact is None or fact == said:
        return []
    return [
        f"you described the price change for {subject.label} with '{tokens[i]}' (a {said}); "
        f"the finding says {fact}."
    ]


def _billing(tokens: list[str], i: int, subject: Subject) -> list[str]:
    """A client's billing called out of line (anomalous) or in line (correctly billed)."""
    fact = subject.facts.get(BILLING)
    if NEGATIONS & set(tokens[max(i - 4, 0) : i]):  # "not out of line"
        return []
    said = BILLING_VERDICTS[tokens[i]]
    if tokens[i] == "line":
        said = "out of line" if tokens[max(i - 2, 0) : i] == ["out", "of"] else "in line"
        if said == "in line" and tokens[i - 1 : i] != ["in"]:
            return []
    if fact is None or fact == said:
        return []
    return [f"you called {subject.label}'s billing {said}; the finding says {fact}."]
