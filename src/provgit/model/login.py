"""Login ids as MiCollab takes them, and when two of them look alike.

MiCollab documents a login id as 2-113 characters of ISO 8859-1; its bulk
import refuses `@`, a comma and whitespace. provgit also refuses control and
invisible (format) characters, which no admin can see in a review, and path
separators, since login ids end up in element URLs and file names.
"""

from __future__ import annotations

import re
import unicodedata

LOGIN_MIN, LOGIN_MAX = 2, 113

_NAMED = {"@": "'@'", ",": "a comma"}
# Printable ASCII without a space, '@', ',', '/' or '\\': fine as it is.
_PLAIN = re.compile(r"[!-+\-.0-?A-\[\]-~]+")

# Look-alikes of Latin letters and digits (after NFKC), from Unicode's
# confusables list (UTS #39), kept to the scripts admins meet: Cyrillic,
# Greek, and the Latin-1 digits and letters that read the same.
_SKELETON = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
        "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
        "ј": "j", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ɡ": "g",
        "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p",
        "С": "c", "Т": "t", "У": "y", "Х": "x", "Ѕ": "s", "І": "l", "Ј": "j",
        # Greek
        "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "τ": "t", "υ": "u", "χ": "x", "μ": "u", "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z",
        "Η": "h", "Ι": "l", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t",
        "Υ": "y", "Χ": "x",
        # Latin and digits that read alike (Latin-1 ones included: only
        # ISO 8859-1 reaches this check)
        "0": "o", "1": "l", "I": "l", "|": "l", "×": "x", "ø": "o", "Ø": "o", "¦": "l",
        "¡": "i", "ð": "d", "Ð": "d",
    }
)  # fmt: skip
# Letter pairs that read as one letter (UTS #39 confusables), after case folding.
_PAIRS = (("rn", "m"), ("vv", "w"))


def login_id_problem(v: str) -> tuple[str, str] | None:
    """(message, hint) when MiCollab would not take `v` as a login id, else None."""
    if _PLAIN.fullmatch(v) and ".." not in v:
        return None  # the fast path: nearly every login is plain ASCII
    bad: list[str] = []
    for c in dict.fromkeys(v):
        cat = unicodedata.category(c)
        if cat == "Cc":
            bad.append(f"a control character ({_code(c)})")
        elif cat == "Cf" or cat in ("Zl", "Zp"):
            bad.append(f"an invisible character ({_code(c)})")
        elif c.isspace():
            bad.append("a space" if c == " " else f"a space character ({_code(c)})")
        elif c in _NAMED:
            bad.append(_NAMED[c])
        elif ord(c) > 0xFF:
            bad.append(f"'{c}' ({_code(c)}), which is not ISO 8859-1 (Latin-1)")
    if bad:
        return (
            f"login id {v!r} contains {_and(bad)}",
            f"MiCollab takes {LOGIN_MIN}-{LOGIN_MAX} characters of ISO 8859-1 without "
            "spaces, '@' or commas; retype the login id in plain letters and digits",
        )
    if "/" in v or "\\" in v or v in (".", ".."):
        return (
            f"login id {v!r} looks like a file path",
            "a login id is a name, not a path: remove '/', '\\' and '..'",
        )
    return None


def skeleton(v: str) -> str:
    """What `v` looks like: NFKC, look-alikes mapped to Latin, case folded."""
    if v.isascii():  # NFKC leaves ASCII alone
        # The ASCII rows of the table below, with str.replace (C speed).
        v = v.replace("I", "l").lower()
        v = v.replace("0", "o").replace("1", "l").replace("|", "l")
    else:
        v = unicodedata.normalize("NFKC", v).translate(_SKELETON)
        # An accent is easy to miss in a review: 'alicé' passes for 'alice'.
        v = unicodedata.normalize("NFD", v)
        v = "".join(c for c in v if not unicodedata.combining(c)).casefold()
    for pair, one in _PAIRS:
        v = v.replace(pair, one)
    return v


def _code(c: str) -> str:
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X} {name}" if name else f"U+{ord(c):04X}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
