"""Prompt files (``*.md`` beside this module), loaded by name."""

from functools import cache
from importlib.resources import files


@cache
def load_prompt(name: str) -> str:
    """Return the text of ``aimesh/prompts/<name>.md``.

    Args:
        name: Prompt name without extension, e.g. ``"coordinator"``.

    Raises:
        FileNotFoundError: If no such prompt file is packaged.
    """
    return files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8").strip()
