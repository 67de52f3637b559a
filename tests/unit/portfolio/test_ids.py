from aimesh.portfolio.ids import find_ids, ids_in, named_ids


def test_numbers_are_not_taken_for_ids_of_a_book_with_numeric_ids():
    found = find_ids("Client 1042 pays $1,042.00, 10.42% of 1042.", ["1042"])
    assert [m.start() for m in found] == [7, 38]


def test_ids_with_spaces_are_found_in_any_case():
    found = find_ids("acme corp and Beta LLC", ["Acme Corp", "Beta LLC"])
    assert [m.group() for m in found] == ["acme corp", "Beta LLC"]


def test_the_longest_of_two_overlapping_ids_is_found():
    assert [
        m.group() for m in find_ids("Acme Corp East pays", ["Acme Corp", "Acme Corp East"])
    ] == ["Acme Corp East"]


def test_named_ids_are_spelled_as_the_book_spells_them_once_each():
    ids = {"C00042", "C00050", "Acme Corp"}
    assert named_ids("c00042, ACME CORP and again C00042; not C000420.", ids) == [
        "C00042",
        "Acme Corp",
    ]


def test_an_id_after_a_comma_is_found_unless_it_starts_with_a_digit():
    assert [m.group() for m in find_ids("C00042,C00050", ["C00042", "C00050"])] == [
        "C00042",
        "C00050",
    ]
    assert find_ids("$1,042.00", ["042"]) == []


def test_ids_in_finds_the_samples_short_ids_in_the_books_spelling(sample):
    assert ids_in("Is c42 or C00050 at risk, and C99999?", sample) == ["C00050", "C00042"]
