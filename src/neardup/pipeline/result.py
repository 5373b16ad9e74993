"""What a dedup run gives: each document's place (CLUSTERS), the summary, and their one serialiser.

A CLUSTERS row is :meth:`Assignment.to_dict`; :func:`clusters_lines` writes the same rows as JSON
lines straight from columns (a million lines in seconds, not tens of seconds), byte for byte what
``json.dumps(assignment.to_dict())`` gives — the local command and the Spark engine both write
CLUSTERS through it, so their outputs cannot differ.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neardup.match.scores import KIND_NAMES
from neardup.pipeline.stages import Assignments


@dataclass(frozen=True)
class Assignment:
    """One input document's place in the result (a line of the CLUSTERS output)."""

    id: str
    cluster: str
    representative: bool
    kind: str
    jaccard: float | None = None
    doc_in_representative: float | None = None
    representative_in_doc: float | None = None
    coverage: float | None = None
    dropped_paragraphs: tuple[int, ...] = ()
    #: Paragraphs of a removed document that its representative lacks and kept documents hold, and
    #: some of those documents (:mod:`neardup.pipeline.elsewhere`).
    held_elsewhere: int = 0
    held_by: tuple[str, ...] = ()
    #: A kept document of kind ``figures-differ``: the document it would have been removed for but
    #: for its figures (:mod:`neardup.pipeline.figures`); the scores are those of this pair.
    differs_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """One CLUSTERS row: the document, its representative, their relation and scores, and
        where the text its representative lacks is kept."""
        record: dict[str, Any] = {"id": self.id, "cluster": self.cluster, "representative": self.representative,
                                  "kind": self.kind}
        if self.differs_from is not None:
            record["differs_from"] = self.differs_from
        if self.jaccard is not None:
            record["jaccard"] = round(self.jaccard, 4)
            record["containment"] = {"doc_in_representative": round(self.doc_in_representative or 0.0, 4),
                                     "representative_in_doc": round(self.representative_in_doc or 0.0, 4)}
            record["coverage"] = round(self.coverage or 0.0, 4)
        if not self.representative:
            record["held_elsewhere"] = {"paragraphs": self.held_elsewhere, "by": list(self.held_by)}
        if self.dropped_paragraphs:
            record["dropped_paragraphs"] = list(self.dropped_paragraphs)
        return record


@dataclass(frozen=True)
class ClusterColumns:
    """CLUSTERS rows as columns of Python values (what both engines hold before writing)."""

    id: Sequence[str]
    cluster: Sequence[str]
    representative: Sequence[bool]
    kind: Sequence[str]
    jaccard: Sequence[float | None]
    doc_in_representative: Sequence[float | None]
    representative_in_doc: Sequence[float | None]
    coverage: Sequence[float | None]
    dropped_paragraphs: Mapping[int, Sequence[int]] = field(default_factory=dict)
    held_elsewhere: Sequence[int] = ()
    held_by: Sequence[Sequence[str]] = ()
    differs_from: Sequence[str | None] = ()

    def __len__(self) -> int:
        return len(self.id)

    def partner(self, row: int) -> str | None:
        """The document a kept row of kind figures-differ names, else None."""
        return self.differs_from[row] if self.differs_from else None

    def assignment(self, row: int) -> Assignment:
        """Row ``row`` as an :class:`Assignment`."""
        dropped = tuple(self.dropped_paragraphs.get(row, ()))
        if self.representative[row]:
            partner = self.partner(row)
            if partner is not None:
                return Assignment(self.id[row], self.id[row], True, "figures-differ", self.jaccard[row],
                                  self.doc_in_representative[row], self.representative_in_doc[row], self.coverage[row],
                                  dropped, differs_from=partner)
            return Assignment(self.id[row], self.id[row], True, "representative", dropped_paragraphs=dropped)
        return Assignment(self.id[row], self.cluster[row], False, self.kind[row], self.jaccard[row],
                          self.doc_in_representative[row], self.representative_in_doc[row], self.coverage[row],
                          dropped, self.held_elsewhere[row], tuple(self.held_by[row]))


def clusters_lines(columns: ClusterColumns) -> Iterator[bytes]:
    """Each row's CLUSTERS line, exactly ``json.dumps(assignment.to_dict(), ensure_ascii=False)``."""
    quoted: dict[str, str] = {}

    def quote(text: str) -> str:
        found = quoted.get(text)
        if found is None:
            found = quoted[text] = json.dumps(text, ensure_ascii=False)
        return found

    for row in range(len(columns)):
        me = quote(columns.id[row])
        dropped = columns.dropped_paragraphs.get(row)
        tail = f', "dropped_paragraphs": {json.dumps(list(dropped))}' if dropped else ""
        partner = columns.partner(row)
        if columns.representative[row] and partner is not None:
            line = (f'{{"id": {me}, "cluster": {me}, "representative": true, "kind": "figures-differ", '
                    f'"differs_from": {quote(partner)}, {_scores(columns, row)}{tail}}}')
        elif columns.representative[row]:
            line = f'{{"id": {me}, "cluster": {me}, "representative": true, "kind": "representative"{tail}}}'
        else:
            line = (f'{{"id": {me}, "cluster": {quote(columns.cluster[row])}, "representative": false, "kind": '
                    f'{quote(columns.kind[row])}, {_scores(columns, row)}, '
                    f'"held_elsewhere": {{"paragraphs": {columns.held_elsewhere[row]}, "by": '
                    f'[{", ".join(quote(holder) for holder in columns.held_by[row])}]}}{tail}}}')
        yield line.encode("utf-8", "surrogatepass")


def _scores(columns: ClusterColumns, row: int) -> str:
    """The jaccard, containment and coverage of a row, as :meth:`Assignment.to_dict` rounds them."""
    inside, outside = columns.doc_in_representative[row] or 0.0, columns.representative_in_doc[row] or 0.0
    return (f'"jaccard": {round(columns.jaccard[row] or 0.0, 4)!r}, "containment": {{"doc_in_representative": '
            f'{round(inside, 4)!r}, "representative_in_doc": {round(outside, 4)!r}}}, '
            f'"coverage": {round(columns.coverage[row] or 0.0, 4)!r}')


@dataclass
class DedupSummary:
    """Counts of one run, for the summary line and for people tuning it."""

    documents: int = 0
    clusters: int = 0
    removed: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    exact_classes: int = 0
    candidate_pairs: int = 0
    verified_late: int = 0
    large_buckets: int = 0
    largest_bucket: int = 0
    kept_unresolved: int = 0
    #: Removals undone because no kept document held a paragraph of theirs the representative lacks.
    kept_for_loss: int = 0
    #: Kept documents that another would hold but for their figures (CLUSTERS kind figures-differ).
    figures_differ: int = 0
    #: Documents without a date, with ``keep="earliest"`` (ranked after every dated one).
    undated: int = 0
    #: A reference corpus (``dedup(..., reference=)``): its documents, the new documents removed as
    #: copies of one of them, and its records skipped.
    reference_documents: int = 0
    removed_for_reference: int = 0
    reference_skipped: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    #: Peak resident memory of this process (MB) at the end of each stage.
    peak_mb: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """The one-line summary the CLI prints (thousands separated)."""
        kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(self.by_kind.items()))
        skipped = sum(self.skipped.values())
        return (f"{self.documents:,} documents, {self.clusters:,} clusters, {self.removed:,} removed"
                + (f" ({kinds})" if kinds else "")
                + (f", {self.figures_differ:,} kept for their figures" if self.figures_differ else "")
                + (f", {skipped:,} skipped" if skipped else ""))


@dataclass
class DedupResult:
    """The assignment of every document, as columns (``result[i]`` or iteration gives
    :class:`Assignment` objects), and the summary."""

    ids: list[str]
    representative: np.ndarray   # int64: row of each document's representative
    kind: np.ndarray             # int8: kind codes of neardup.match.scores; -1 for representatives
    jaccard: np.ndarray          # float64 (nan for representatives)
    doc_in_representative: np.ndarray
    representative_in_doc: np.ndarray
    coverage: np.ndarray
    summary: DedupSummary
    dropped_paragraphs: dict[int, tuple[int, ...]] = field(default_factory=dict)
    #: The rows reported (a dedup against a reference corpus reports the new documents only).
    rows: np.ndarray | None = None
    held_elsewhere: np.ndarray | None = None  # int64 per document (see Assignment)
    held_by: np.ndarray | None = None         # int64 (documents, HOLDERS): rows, -1 padded
    differs_from: np.ndarray | None = None    # int64 per document: the row a figures-differ row names, or -1

    @staticmethod
    def of(ids: list[str], found: Assignments, summary: DedupSummary, dropped: dict[int, tuple[int, ...]],
           rows: np.ndarray | None) -> DedupResult:
        """The result of the assignments stage's columns."""
        return DedupResult(ids, found.representative, found.kind, found.jaccard, found.doc_in_representative,
                           found.representative_in_doc, found.coverage, summary, dropped, rows,
                           found.held_elsewhere, found.held_by, found.differs_from)

    def _rows(self) -> list[int]:
        return list(range(len(self.ids))) if self.rows is None else self.rows.tolist()

    def __len__(self) -> int:
        return len(self.ids) if self.rows is None else len(self.rows)

    def __getitem__(self, index: int) -> Assignment:
        row = index if self.rows is None else int(self.rows[index])
        rep = int(self.representative[row])
        dropped = self.dropped_paragraphs.get(row, ())
        if rep == row:
            partner = self._partner(row)
            if partner is not None:
                return Assignment(self.ids[row], self.ids[row], True, "figures-differ", float(self.jaccard[row]),
                                  float(self.doc_in_representative[row]), float(self.representative_in_doc[row]),
                                  float(self.coverage[row]), dropped, differs_from=partner)
            return Assignment(self.ids[row], self.ids[row], True, "representative", dropped_paragraphs=dropped)
        return Assignment(self.ids[row], self.ids[rep], False, KIND_NAMES[int(self.kind[row])],
                          float(self.jaccard[row]), float(self.doc_in_representative[row]),
                          float(self.representative_in_doc[row]), float(self.coverage[row]),
                          held_elsewhere=self._held_count(row), held_by=self._holders(row))

    def _partner(self, row: int) -> str | None:
        if self.differs_from is None or self.differs_from[row] < 0:
            return None
        return self.ids[int(self.differs_from[row])]

    def _held_count(self, row: int) -> int:
        return 0 if self.held_elsewhere is None else max(int(self.held_elsewhere[row]), 0)

    def _holders(self, row: int) -> tuple[str, ...]:
        if self.held_by is None:
            return ()
        return tuple(self.ids[h] for h in self.held_by[row].tolist() if h >= 0)

    def __iter__(self) -> Iterator[Assignment]:
        return (self[index] for index in range(len(self)))

    def columns(self) -> ClusterColumns:
        """The reported rows as CLUSTERS columns."""
        rows = self._rows()
        representative = self.representative.tolist()
        kind = self.kind.tolist()
        scores = [[values[r] for r in rows] for values in (self.jaccard.tolist(), self.doc_in_representative.tolist(),
                                                           self.representative_in_doc.tolist(), self.coverage.tolist())]
        return ClusterColumns(
            [self.ids[r] for r in rows], [self.ids[representative[r]] for r in rows],
            [representative[r] == r for r in rows], [KIND_NAMES.get(kind[r], "representative") for r in rows],
            scores[0], scores[1], scores[2], scores[3],
            dropped_paragraphs={k: p for k, r in enumerate(rows) if (p := self.dropped_paragraphs.get(r))},
            held_elsewhere=[self._held_count(r) for r in rows], held_by=[self._holders(r) for r in rows],
            differs_from=[self._partner(r) for r in rows])

    def json_lines(self) -> Iterator[bytes]:
        """Each document's CLUSTERS line, as ``json.dumps(assignment.to_dict())`` writes it."""
        return clusters_lines(self.columns())

    @property
    def kept(self) -> np.ndarray:
        """True for the documents kept (the representatives), by reported row."""
        kept = self.representative == np.arange(len(self.ids))
        return np.asarray(kept if self.rows is None else kept[self.rows])

    @property
    def dropped_by_row(self) -> dict[int, tuple[int, ...]]:
        """``dropped_paragraphs`` keyed by reported row (what the record spill numbers)."""
        if self.rows is None:
            return self.dropped_paragraphs
        position = {int(row): k for k, row in enumerate(self.rows.tolist())}
        return {position[row]: p for row, p in self.dropped_paragraphs.items() if row in position}
