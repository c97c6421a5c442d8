"""Character-level clean-up shared by identifier checks and address standardisation.

Deliberately narrower than NFKC: only the full-width ASCII block (U+FF01-U+FF5E) and the ideographic
space are folded, so circled numbers, compatibility ideographs and the like stay as received (the
address module applies NFKC itself where it wants it).
"""

from __future__ import annotations

import re

__all__ = ["to_halfwidth"]

_FULLWIDTH = {i: i - 0xFEE0 for i in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
# Invisible characters that spreadsheets and web forms leave inside pasted values.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_TABLE = _FULLWIDTH | _INVISIBLE
_SPACES = re.compile(r"\s+")


def to_halfwidth(value: str, *, drop_spaces: bool = False) -> str:
    """Fold full-width ASCII to half-width, drop invisible characters and tidy whitespace.

    Runs of whitespace (any Unicode space, including the ideographic and no-break spaces) become one
    space and the ends are stripped; with `drop_spaces`, all whitespace is removed (for identifiers,
    where "3302 0319 ..." means "330203 19...").
    """
    text = value.translate(_TABLE)
    if drop_spaces:
        return _SPACES.sub("", text)
    return _SPACES.sub(" ", text).strip()
