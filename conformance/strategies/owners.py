"""Owner ids that break naive isolation, and the key layouts naive stores build from them.

An owner id reaches storage from an authorisation context the backend does not control, so
the kit draws owners in *families*: a base id and the look-alikes a careless store merges
with it (a separator suffix, case and Unicode variants, a NUL suffix, wildcards, trimmed
spaces). Every family member is a usable owner (SPEC TS-3): a non-anonymous ``str`` of
Unicode scalar values, at most 1,024 UTF-8 bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from conformance.contract.store import SecurityConfig
from conformance.strategies.keys import (
    METACHARACTERS,
    hostile_keys,
    plain_keys,
    variants,
)

#: Owner ids that collide under a careless key scheme, case folding, Unicode normalisation or trimming.
HOSTILE_OWNERS: tuple[str, ...] = (
    "a", "a:b", "a:", ":a", "A", "a ", " a", "a/", "a/b", "a\\b", "a\x00", "a\x00b", "a\n", "ß", "ss", "SS", "ẞ",
    "é", "e\u0301", "ａ", "İ", "i\u0307", "a%3Ab", "a%2Fb", "tasks/", "tasks", "*", "%", "?", "a*", "..", "a" * 300,
)
#: Pairs that must stay apart: one owner's tasks are invisible to the other.
CLASHING_PAIRS: tuple[tuple[str, str], ...] = (
    ("a", "a:b"), ("a:b", "a"), ("A", "a"), ("ß", "ss"), ("ss", "SS"), ("é", "e\u0301"), ("a", "a "), ("a/", "a"),
    ("a", "a\x00"), ("a", "ａ"), ("owner-7f3a-secret", "intruder-91c2-secret"),
)
#: Distinctive owners: a message that contains one of them names it.
SECRET_OWNER, INTRUDER = "owner-7f3a-secret", "intruder-91c2-secret"

_DEFAULT_SECURITY = SecurityConfig()


def is_usable_owner(owner: str, security: SecurityConfig = _DEFAULT_SECURITY) -> bool:
    """Whether a store with ``security`` lets ``owner`` hold tasks (SPEC TS-3)."""
    return not security.refuses(owner)


def _family(base: str) -> list[str]:
    return [owner for owner in variants(base) if is_usable_owner(owner)]


_BASES = st.one_of(
    st.sampled_from(["a", "alice", "Team", "straße", "ﬁle", "ıi", "é"]),
    plain_keys(),
    hostile_keys(),
    st.builds(lambda stem, meta: stem + meta, plain_keys(), st.sampled_from(METACHARACTERS)),
)


def owner_families(min_size: int = 2, max_size: int = 6) -> st.SearchStrategy[list[str]]:
    """A base owner and some of its look-alikes, all distinct and usable: the owners one test puts side by side."""

    def pick(family: list[str]) -> st.SearchStrategy[list[str]]:
        rest = family[1:]
        return st.lists(st.sampled_from(rest), min_size=min(min_size - 1, len(rest)), max_size=max_size - 1, unique=True).map(
            lambda chosen: [family[0], *chosen]
        )

    return _BASES.map(_family).filter(lambda family: len(family) >= min_size).flatmap(pick)


def owner_pairs() -> st.SearchStrategy[tuple[str, str]]:
    """An owner and an intruder: look-alikes most of the time, the fixed clashing pairs, or strangers."""
    lookalike = owner_families(2, 2).flatmap(lambda pair: st.sampled_from([(pair[0], pair[1]), (pair[1], pair[0])]))
    return st.one_of(lookalike, st.sampled_from(CLASHING_PAIRS))


#: How naive stores put an owner into a key: (name, key of a task, prefix listing the owner's tasks).
NAIVE_LAYOUTS: tuple[tuple[str, Callable[[str, str], str], Callable[[str], str]], ...] = (
    ("task:{owner}:{id}", lambda owner, task: f"task:{owner}:{task}", lambda owner: f"task:{owner}:"),
    ("tasks/{owner}/{id}", lambda owner, task: f"tasks/{owner}/{task}", lambda owner: f"tasks/{owner}/"),
    ("{owner}{id}", lambda owner, task: f"{owner}{task}", lambda owner: owner),
)

#: Task-id tails that end up right after an owner's prefix: astral characters (beyond a
#: ``prefix + "\uffff"`` range scan), NUL, DEL, the last BMP character, wildcards, separators.
ID_TAILS: tuple[str, ...] = ("1", "🔑", "\U0010ffff", "\x00", "\x7f", "\uffff", "*", "%", "_", ":", "/", "[a]", "é", "Z")


def task_ids() -> st.SearchStrategy[str]:
    """Short id-like strings made of ``ID_TAILS``, so every hostile character follows some owner's prefix."""
    return st.lists(st.sampled_from(ID_TAILS), min_size=1, max_size=3).map("".join)
