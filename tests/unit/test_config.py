"""Settings: durations end in ``_s``; the old variable names still work, with a warning."""

import warnings

import pytest

from aimesh.config import RENAMED, Settings


@pytest.mark.parametrize("old", RENAMED)
def test_an_old_variable_name_still_sets_its_setting_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, old: str
) -> None:
    field = RENAMED[old]
    new = f"AIMESH_{field.upper()}"
    monkeypatch.setenv(old, "7.5")
    with pytest.warns(FutureWarning, match=rf"{old} is deprecated.*set {new} instead"):
        settings = Settings(_env_file=None)
    assert getattr(settings, field) == 7.5


@pytest.mark.parametrize("old", RENAMED)
def test_an_old_keyword_still_sets_its_setting_with_a_warning(old: str) -> None:
    keyword, field = old.removeprefix("AIMESH_").lower(), RENAMED[old]
    with pytest.warns(FutureWarning, match=rf"{keyword} is deprecated.*set {field} instead"):
        settings = Settings(_env_file=None, **{keyword: 7.5})
    assert getattr(settings, field) == 7.5


def test_the_new_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMESH_REQUEST_TIMEOUT", "7.5")
    monkeypatch.setenv("AIMESH_REQUEST_TIMEOUT_S", "9")
    with pytest.warns(FutureWarning, match="AIMESH_REQUEST_TIMEOUT is deprecated"):
        settings = Settings(_env_file=None)
    assert settings.request_timeout_s == 9


def test_new_names_set_durations_in_seconds_without_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for field in RENAMED.values():
        monkeypatch.setenv(f"AIMESH_{field.upper()}", "3")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = Settings(_env_file=None)
    assert all(getattr(settings, field) == 3 for field in RENAMED.values())
    assert all(name.endswith("_s") for name in RENAMED.values())
