"""Keys and prefixes that break naive backends.

Each family of keys is built so that a backend which globs, uses SQL LIKE, folds case,
normalises Unicode, truncates or splits on ``:`` maps two distinct keys to one, or lists
a key under a prefix it does not literally start with.
"""

from __future__ import annotations

import unicodedata

from hypothesis import strategies as st

from conformance.contract.backend import MAX_KEY_BYTES

#: Characters with a meaning to some engine: key separators, globs, LIKE, regex, escapes.
METACHARACTERS = ":*?[]%_\\^$.|(){}+!#/-'\"` "

#: Pairs that fold, normalise or look alike but are different strings.
LOOKALIKES: tuple[tuple[str, str], ...] = (
    ("a", "A"),
    ("é", "e\u0301"),  # NFC vs NFD
    ("ß", "ss"),  # case-folds to the same
    ("ﬁ", "fi"),  # NFKC ligature
    ("ı", "i"),  # Turkish dotless i
    ("İ", "i̇"),  # dotted capital I vs its lowercase (i + combining dot)
    ("а", "a"),  # Cyrillic a vs Latin a
    ("Ω", "Ω"),  # ohm sign vs omega (NFC maps one to the other)
    ("K", "K"),  # Kelvin sign vs K
    ("\u00a0", " "),  # no-break space vs space
)

CONTROL = "\x00\x01\x1f\x7f\t\n"


def is_valid_key(key: str) -> bool:
    """Whether the contract requires a backend to accept ``key`` (BK-13)."""
    if not key:
        return False
    try:
        return len(key.encode("utf-8")) <= MAX_KEY_BYTES
    except UnicodeEncodeError:  # lone surrogates are not keys
        return False


def _text(alphabet: st.SearchStrategy[str], min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)


_PLAIN = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789")
_UNICODE = st.characters(codec="utf-8", exclude_categories=["Cs"])
_HOSTILE = st.one_of(
    _PLAIN,
    st.sampled_from(METACHARACTERS),
    st.sampled_from("".join(a + b for a, b in LOOKALIKES)),
    st.sampled_from(CONTROL),
    _UNICODE,
)


def plain_keys() -> st.SearchStrategy[str]:
    """Short ASCII keys, the way most tests name things."""
    return _text(_PLAIN, 1, 12)


def long_keys() -> st.SearchStrategy[str]:
    """Keys at or near the byte limit, sharing a long prefix: truncation turns them into one key."""

    def build(stem: str, tail: str, width: int) -> str:
        body = (stem * (MAX_KEY_BYTES // max(1, len(stem.encode())) + 1))
        encoded = body.encode("utf-8")[: width - len(tail.encode("utf-8"))]
        return encoded.decode("utf-8", errors="ignore") + tail

    return st.builds(
        build,
        st.sampled_from(["k", "é", "ключ", "🔑", "a:b"]),
        _text(_PLAIN, 1, 3),
        st.integers(min_value=MAX_KEY_BYTES - 16, max_value=MAX_KEY_BYTES),
    ).filter(is_valid_key)


def hostile_keys() -> st.SearchStrategy[str]:
    """Keys made of separators, wildcards, look-alikes, control characters and arbitrary Unicode."""
    return _text(_HOSTILE, 1, 24).filter(is_valid_key)


def keys() -> st.SearchStrategy[str]:
    """Any key the contract says a backend must accept."""
    return st.one_of(plain_keys(), hostile_keys(), long_keys())


def variants(base: str) -> list[str]:
    """Distinct keys a broken backend confuses with ``base`` (and ``base`` itself first)."""
    swapped = [base.replace(a, b) for a, b in LOOKALIKES if a in base] + [base.replace(b, a) for a, b in LOOKALIKES if b in base]
    candidates = [
        base,
        base.upper(),
        base.lower(),
        base.swapcase(),
        base.casefold(),
        unicodedata.normalize("NFD", base),
        unicodedata.normalize("NFC", base),
        unicodedata.normalize("NFKC", base),
        base + ":",
        base + ":x",
        base + "*",
        base + "%",
        base + "_",
        base[:-1] + "_" if len(base) > 1 else base + "_x",
        base[:-1] + "?" if len(base) > 1 else base + "?",
        base + "\x00",
        base + "\x00x",  # with base + NUL: two keys equal up to a NUL, one record to a C-string backend
        " " + base,
        base + " ",
        *swapped,
    ]
    return [k for k in dict.fromkeys(candidates) if is_valid_key(k)]


def key_families(max_bases: int = 3) -> st.SearchStrategy[list[str]]:
    """A few base keys and the variants a broken backend would merge with them, all distinct."""
    base = st.one_of(
        plain_keys().map(lambda k: k + "ß"),
        plain_keys().map(lambda k: "a:" + k),
        plain_keys().map(lambda k: k.capitalize() + "é"),
        hostile_keys(),
        long_keys(),
    )
    # map, not flatmap: the family is a pure function of the bases, so it shrinks as they shrink.
    return st.lists(base, min_size=1, max_size=max_bases).map(
        lambda bases: list(dict.fromkeys(k for b in bases for k in variants(b)))
    )


def prefix_candidates(key_list: list[str]) -> list[str]:
    """Prefixes that overlap the given keys: their true prefixes, themselves, and glob, LIKE and case look-alikes."""
    options: list[str] = [""]
    for key in key_list:
        cut = [key[:i] for i in (1, len(key) // 2, len(key) - 1, len(key)) if 0 < i <= len(key)]
        options.extend(cut)
        options.extend(p + wildcard for p in cut[:2] for wildcard in ("*", "%", "_", "?", "[", ".*"))
        if len(key) > 1:
            options.append(key[:-2] + "." if len(key) > 2 else key[0] + ".")  # a regex's "any character" standing for one of the key's own
        options.extend([key.upper(), key.casefold(), unicodedata.normalize("NFD", key), key + ":"])
    return list(dict.fromkeys(options))


def prefixes_of(key_list: list[str]) -> st.SearchStrategy[str]:
    """One of ``prefix_candidates(key_list)``."""
    return st.sampled_from(prefix_candidates(key_list))
