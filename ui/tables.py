"""Tables a person reads: numbers with their units and a readable precision, ``—`` where a value is missing.

``st.dataframe`` shows a missing number as "None"; a pandas ``Styler`` gives each
column its display format (and ``—`` for a missing value) while the cells stay
numbers, so sorting a column still sorts numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from pandas.io.formats.style import Styler

__all__ = ["styled"]


MAX_CELLS = 200_000  # below pandas' Styler render limit (262,144 cells), which st.dataframe raises on


def styled(df: pd.DataFrame, formats: dict[str, str | Callable[[object], str]]) -> Styler:
    """``df`` with a display format per column (``"{:+.2f}"`` or a function); missing values as ``—``.

    Raises ``ValueError`` for a frame over :data:`MAX_CELLS` cells: a caller shows a readable slice of
    a big table (and exports the whole)."""
    if df.size > MAX_CELLS:
        raise ValueError(f"a table of {len(df):,} rows is too big to format for the screen; show a slice of it")
    present = {c: f for c, f in formats.items() if c in df.columns}
    return df.style.format(present, na_rep="—")
