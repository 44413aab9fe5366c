"""CSV files a spreadsheet or a script reads right, named by what, pair, timeframe and UTC range."""

from __future__ import annotations

import pandas as pd

__all__ = ["FORMULA_LEADS", "csv_safe_text", "export_name", "to_csv"]


def export_name(kind: str, pair: str, timeframe: str, index: pd.Index) -> str:
    """File name saying what, pair, timeframe and UTC range."""
    if len(index):
        rng = f"{index[0]:%Y%m%dT%H%M%SZ}_{index[-1]:%Y%m%dT%H%M%SZ}"
    else:
        rng = "empty"
    return f"alphastream_{kind}_{pair}_{timeframe}_{rng}.csv"


FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_text(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` …) gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def to_csv(df: pd.DataFrame, index_label: str = "timestamp") -> str:
    """CSV a spreadsheet or a script reads right: ISO-8601 UTC timestamps, durations in ISO-8601
    (``P0DT0H5M0S``), floats to 10 significant digits (no ``0.30000000000000004`` noise; prices of
    every instrument keep their digits), text cells that start like a formula neutralised
    (numbers — negative ones included — stay numbers)."""
    out = df.copy()
    if isinstance(out.index, pd.DatetimeIndex):
        out.index = out.index.map(lambda t: t.isoformat())
    elif out.index.dtype == object:
        out.index = out.index.map(csv_safe_text)
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].map(lambda t: t.isoformat() if pd.notna(t) else "")
        elif pd.api.types.is_timedelta64_dtype(out[col]):
            out[col] = out[col].map(lambda d: d.isoformat() if pd.notna(d) else "")
        elif out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(csv_safe_text)
    return out.to_csv(index_label=index_label, float_format="%.10g")
