"""Where a removed document's text went: what CLUSTERS says beside each removal so that a user
can audit it without running anything again.

For a removed document: its paragraphs that its representative does not carry but a kept document
does (``held_elsewhere``: how many), and up to :data:`HOLDERS` of those kept documents (``held_by``,
the best-ranked first). What the representative itself holds is in the row's containment and
coverage; the rest of a removal is lines too short to carry text, or within the ``min_coverage``
allowance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neardup.arrays import run_starts

#: Kept documents named per removal.
HOLDERS = 3


@dataclass(frozen=True)
class HeldElsewhere:
    """Per class: paragraphs of its leader held by a kept class and not by its representative
    (``count``), and those kept classes, best-ranked first (``holders``: HOLDERS columns, -1 padded)."""

    count: np.ndarray    # int64 per class
    holders: np.ndarray  # int64 (classes, HOLDERS)


def held_elsewhere(paragraph_class: np.ndarray, paragraph_digest: np.ndarray, representative: np.ndarray,
                   class_rank: np.ndarray) -> HeldElsewhere:
    """From the paragraphs of every class's leader (their class and digest, in any order), the
    representative class of each class (itself when kept) and the class ranks."""
    classes = len(representative)
    cls = np.asarray(paragraph_class, np.int64)
    _, digest = np.unique(np.asarray(paragraph_digest, np.uint64), return_inverse=True)
    digest = digest.reshape(-1).astype(np.uint64)
    rep = representative[cls]
    kept = rep == cls
    # the best-ranked kept class holding each digest
    holder_of = np.full(int(digest.max()) + 1 if len(digest) else 0, -1, dtype=np.int64)
    order = np.lexsort((class_rank[cls[kept]], digest[kept]))
    first = order[run_starts(digest[kept][order])]
    holder_of[digest[kept][first].astype(np.int64)] = cls[kept][first]
    # paragraphs of removed classes their representative does not carry, that a kept class does
    carried = np.unique((cls.astype(np.uint64) << np.uint64(32)) | digest)
    asked = (rep[~kept].astype(np.uint64) << np.uint64(32)) | digest[~kept]
    holder = holder_of[digest[~kept].astype(np.int64)]
    rest = ~np.isin(asked, carried) & (holder >= 0)
    owner, holder = cls[~kept][rest], holder[rest]
    count = np.bincount(owner, minlength=classes).astype(np.int64)
    pairs = np.unique(np.stack([owner, holder], axis=1), axis=0) if len(owner) else np.zeros((0, 2), np.int64)
    order = np.lexsort((class_rank[pairs[:, 1]], pairs[:, 0]))
    pairs = pairs[order]
    starts = np.flatnonzero(run_starts(pairs[:, 0]))
    place = np.arange(len(pairs)) - np.repeat(starts, np.diff(np.append(starts, len(pairs))))
    named = place < HOLDERS
    holders = np.full((classes, HOLDERS), -1, dtype=np.int64)
    holders[pairs[named, 0], place[named]] = pairs[named, 1]
    return HeldElsewhere(count, holders)
