"""Arguments the ML tools share, each described for the model that fills them in."""

from typing import Annotated

from pydantic import Field

ClientId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="The client's id exactly as the question or an earlier result gives it.",
    ),
]
Segment = Annotated[
    list[Annotated[str, Field(min_length=3, max_length=200)]],
    Field(
        max_length=8,
        description=(
            "Only for a segment the question names: 'column=value', 'column=a|b' (one of) or "
            "'column=lo..hi' (a number range; 'lo..' and '..hi' too), on the client book's "
            "columns listed in your instructions. Omit it for all clients."
        ),
    ),
]
Limit = Annotated[int, Field(ge=1, le=25, description="How many clients to list.")]
Offset = Annotated[
    int,
    Field(
        ge=0, le=1_000_000, description="How many top-ranked clients to skip; 5 = the next five."
    ),
]
