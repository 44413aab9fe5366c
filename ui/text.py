"""User strings shown as text, never as Markdown or HTML.

Streamlit renders Markdown in ``st.markdown``, ``st.caption``, ``st.success``
/``st.error``/…, ``st.toast`` and widget labels: a rule named
``![x](https://evil.example/p.png)`` would make every viewer's browser fetch
that URL, ``:red[…]`` would restyle the page. :func:`md_text` escapes every
character Markdown (and Streamlit's ``:directive[]``, emoji ``:name:`` and
``$math$`` extensions) gives a meaning, so the string shows exactly as typed.
"""

from __future__ import annotations

import re

__all__ = ["md_text"]

_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:=&\"'])")


def md_text(value: object, max_len: int = 500) -> str:
    """``value`` as literal text inside Markdown: specials backslash-escaped, newlines flattened, length capped."""
    s = str(value).replace("\r", " ").replace("\n", " ")
    if len(s) > max_len:
        s = s[: max_len - 1] + "…"
    return _SPECIAL.sub(r"\\\1", s)
