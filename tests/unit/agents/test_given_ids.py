from aimesh.agents.given_ids import was_given


def test_an_id_the_user_gave_in_any_form_counts(sample):
    for text in ["Compare C00042,C00050.", "what about c50?", "C00050: risk?"]:
        assert was_given("C00050", [text], sample), text


def test_an_id_nobody_gave_or_only_inside_a_figure_does_not(sample):
    assert not was_given("C01234", ["Which client is riskiest?"], sample)
    assert not was_given("C00050", ["C000500 pays $50.00"], sample)
