"""Figure partners: the kept documents that another would hold but for their figures.

:func:`neardup.match.scores.holds` never lets a document go for one whose words it shares with
other figures (another day's notice, another quarter's dividend). CLUSTERS says so: such a kept
document's row has kind ``figures-differ`` and names the document it would otherwise have been
removed for — of those, the policy's favourite — with the scores of that pair. The pairs are those
the verify stage measured (both engines hold the same), so local and Spark name the same partner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neardup.arrays import run_starts
from neardup.config import Config
from neardup.match.scores import PairScores, holds
from neardup.pipeline.clustering import KnownPairs


@dataclass(frozen=True)
class FigurePartners:
    """Per held class (ascending): its partner class and their scores seen from the held one."""

    held: np.ndarray     # int64 classes, sorted, distinct
    partner: np.ndarray  # int64 classes
    jaccard: np.ndarray
    inside: np.ndarray   # the held document's containment in its partner
    outside: np.ndarray  # the partner's containment in the held document
    coverage: np.ndarray


def figure_partners(known: KnownPairs, class_rank: np.ndarray, config: Config, partial: bool) -> FigurePartners:
    """For every class that another would hold but for their figures, the best-ranked such class."""
    scores = known.scores  # oriented low -> high
    low = (known.keys >> np.uint64(32)).astype(np.int64)
    high = (known.keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
    gaps = scores.figure_gaps > 0
    flipped = scores.flipped()
    low_held = np.flatnonzero(gaps & holds(scores, config, partial=partial, figures=False))
    high_held = np.flatnonzero(gaps & holds(flipped, config, partial=partial, figures=False))
    held = np.concatenate([low[low_held], high[high_held]])
    partner = np.concatenate([high[low_held], low[high_held]])
    seen = PairScores.concatenate([scores.select(low_held), flipped.select(high_held)])
    order = np.lexsort((np.asarray(class_rank)[partner], held))
    first = order[run_starts(held[order])]
    return FigurePartners(held[first], partner[first], seen.jaccard[first], seen.left_in_right[first],
                          seen.right_in_left[first], seen.left_coverage[first])
