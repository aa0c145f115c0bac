"""The value types experiment files use, as pydantic annotations: strict (no "3" for 3, no true for 1), finite."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StrictFloat, StrictInt

FORBID = ConfigDict(extra="forbid", allow_inf_nan=False)  # a section that takes only its own keys
NonNegInt = Annotated[StrictInt, Field(ge=0)]
PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegFloat = Annotated[StrictFloat, Field(ge=0)]
PositiveFloat = Annotated[StrictFloat, Field(gt=0)]
Fraction = Annotated[StrictFloat, Field(ge=0, le=1)]
