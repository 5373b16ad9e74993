"""What a dedup run decides beyond the thresholds: which document a cluster keeps, and the run's options.

:class:`KeepPolicy` is the keep policy as a type with its own sort keys: the local executor turns
them into ranks with numpy (:func:`policy_ranks`), the Spark engine into an ordering of columns, so
the two engines cannot rank documents differently. :class:`DedupOptions` carries every option of a
run (policy, date field, partial copies, repeated paragraphs) through :func:`neardup.dedup`, the local
executor and :mod:`neardup.spark`, and is what Spark's checkpoints are keyed by.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any, Literal, NamedTuple

import numpy as np

from neardup.errors import ConfigError

#: The names the API and the command line take.
KeepName = Literal["first", "longest", "earliest", "cleanest"]


class SortKey(NamedTuple):
    """One column a policy orders documents by (``descending``: larger first)."""

    column: str
    descending: bool = False


class KeepPolicy(Enum):
    """Which document of a cluster is kept, among those that hold the others equally well.

    Sort keys, best first; the columns are ``order`` (input order), ``length`` (characters of the
    text), ``undated`` (no date: after every dated one), ``date`` (the parsed date key), ``own``
    (words of text of its own besides the story: :func:`neardup.pipeline.stages.own_words`) and ``id``.
    ``cleanest`` keeps the copy with the least text of its own — the clean original rather than an
    outlet's page with its byline, footer and "ALSO READ" lines — then the shortest, then by id.
    """

    FIRST = "first"
    LONGEST = "longest"
    EARLIEST = "earliest"
    CLEANEST = "cleanest"

    @classmethod
    def parse(cls, value: KeepPolicy | str) -> KeepPolicy:
        """A policy from its name (ConfigError naming the choices otherwise)."""
        if isinstance(value, KeepPolicy):
            return value
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(policy.value for policy in cls)
            raise ConfigError(f"keep must be one of {names}, got {value!r}") from None

    @property
    def sort_keys(self) -> tuple[SortKey, ...]:
        """The columns this policy ranks by; ties always go to the smaller id (``first``: the order)."""
        return _SORT_KEYS[self]

    @property
    def reads_dates(self) -> bool:
        """Whether the policy needs each document's date."""
        return any(key.column == "date" for key in self.sort_keys)

    @property
    def reads_own_words(self) -> bool:
        """Whether the policy needs each document's own words (paragraph frequencies first)."""
        return any(key.column == "own" for key in self.sort_keys)


_SORT_KEYS = {
    KeepPolicy.FIRST: (SortKey("order"),),
    KeepPolicy.LONGEST: (SortKey("length", descending=True), SortKey("id")),
    KeepPolicy.EARLIEST: (SortKey("undated"), SortKey("date"), SortKey("id")),
    KeepPolicy.CLEANEST: (SortKey("own"), SortKey("length"), SortKey("id")),
}
#: The policy names, for the command line's choices.
POLICIES = tuple(policy.value for policy in KeepPolicy)


@dataclass(frozen=True)
class DedupOptions:
    """The options of one dedup run, whatever the engine."""

    #: Which document of a cluster is kept (see :class:`KeepPolicy`).
    keep: KeepPolicy = KeepPolicy.FIRST
    #: The metadata field ``keep="earliest"`` reads.
    date_field: str = "date"
    #: Remove partial copies too (truncated copies, a story inside a longer page), not only exact
    #: and near-duplicates.
    partial: bool = True
    #: Cut paragraphs that repeat an earlier one of the same document from the kept records.
    drop_repeats: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep", KeepPolicy.parse(self.keep))
        if not isinstance(self.date_field, str) or not self.date_field:
            raise ConfigError(f"date_field must be a non-empty string, got {self.date_field!r}")
        for name in ("partial", "drop_repeats"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")

    @staticmethod
    def of(keep: KeepName | KeepPolicy = "first", date_field: str = "date", partial: bool = True,
           drop_repeats: bool = False) -> DedupOptions:
        """The options from the names the API and the command line take."""
        return DedupOptions(KeepPolicy.parse(keep), date_field, partial, drop_repeats)

    def for_reference(self) -> DedupOptions:
        """The options a reference corpus is read with: its records are never cut."""
        return replace(self, drop_repeats=False)

    def to_dict(self) -> dict[str, Any]:
        """The options as plain values (what a checkpoint is keyed by, what a run reports)."""
        return {**asdict(self), "keep": self.keep.value}

    def to_json(self) -> str:
        """The options as JSON (keys sorted: the same options give the same text)."""
        return json.dumps(self.to_dict(), sort_keys=True)


def date_key(value: Any) -> str | None:
    """A sortable date: ISO and common wire formats parsed; other values kept as text."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, "%d-%b-%Y %H:%M:%S.%f"),
                  lambda t: datetime.strptime(t, "%d-%b-%Y %H:%M:%S"), lambda t: datetime.strptime(t, "%d %b %Y")):
        try:
            return parse(text).replace(tzinfo=None).isoformat()
        except ValueError:
            continue
    return text


def policy_ranks(ids: Sequence[str], lengths: np.ndarray, dates: Sequence[str | None],
                 keep: KeepPolicy, own: np.ndarray | None = None) -> np.ndarray:
    """Distinct ranks (0 = kept first) of documents under ``keep``: its sort keys, then the id
    (``own``: each document's own words, for the policies that read them)."""
    n = len(ids)
    if keep.sort_keys == (SortKey("order"),):
        return np.arange(n, dtype=np.int64)
    keys = [_policy_column(key, ids, lengths, dates, own) for key in keep.sort_keys]
    if keep.sort_keys[-1].column != "id":
        keys.append(_id_ranks(ids))
    order = np.lexsort(tuple(reversed(keys)))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def _policy_column(key: SortKey, ids: Sequence[str], lengths: np.ndarray, dates: Sequence[str | None],
                   own: np.ndarray | None) -> np.ndarray:
    """The values of one sort key, as integers that sort the way the key wants (ascending)."""
    if key.column == "own":
        if own is None:
            raise ValueError("the keep policy reads each document's own words: pass them")
        values = np.asarray(own, dtype=np.int64)
    elif key.column == "order":
        values = np.arange(len(ids), dtype=np.int64)
    elif key.column == "length":
        values = np.asarray(lengths, dtype=np.int64)
    elif key.column == "id":
        values = _id_ranks(ids)
    elif key.column == "date":
        values = _dense_ranks([d or "" for d in dates])
    else:  # undated
        values = np.fromiter((d is None for d in dates), dtype=np.int64, count=len(ids))
    return -values if key.descending else values


def _id_ranks(ids: Sequence[str]) -> np.ndarray:
    """Each id's place in sorted order (ids are distinct; Python's order of code points)."""
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
    return ranks


def _dense_ranks(values: Sequence[str]) -> np.ndarray:
    """Each string's place in sorted order (equal strings, equal places)."""
    if not values:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(np.unique(np.array(values, dtype=str), return_inverse=True)[1], dtype=np.int64).reshape(-1)
