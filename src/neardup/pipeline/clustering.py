"""Verified pairs → clusters → one representative each, and nothing removed that it does not hold.

The rule that decides everything: a document is removed only in favour of a representative
that **holds** it (:func:`neardup.match.scores.holds`), verified directly between the two — never
through a chain of other documents. Clusters are built in three steps:

1. **components**: documents joined by pairs where one holds the other (connected components
   with ``scipy.sparse.csgraph``);
2. **representatives, round by round**, in every component at once: the keep policy's
   favourite among the documents not yet placed that no other unplaced document *dominates*.
   A document dominates one it holds when it is not held back, or holds it clearly better
   (the other's containment in it exceeds its containment in the other by ``fuller_margin``,
   furniture that other documents hold left out: an outlet's footer does not make its copy
   fuller than the original):
   a full story dominates its truncated copy, its headline flash and a copy that dropped a
   paragraph, so none of those is kept in place of the story; near-duplicates that hold each
   other equally well are left to the policy. Every unplaced member of the component that the
   representative holds joins it; pairs with it that no bucket proposed are verified now;
3. whatever is left starts the next round: a document that the first representative does not
   hold (a different story chained in through a template line) becomes a representative of
   its own, or joins a later one that does hold it.

Each round is vectorised over all components (no Python loop per document). Ties are broken
by rank, and ranks by id, so the clusters depend on the documents and the policy only — not
on the input order (except for ``first``, whose ranks *are* the order), batch size or threads.
A component still unresolved after ``max_rounds`` keeps its remaining documents (nothing lost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neardup.arrays import run_starts
from neardup.config import Config
from neardup.match.scores import PairScores


@dataclass
class KnownPairs:
    """Verified pairs, with which side holds the other, looked up by (a, b) in bulk."""

    keys: np.ndarray     # uint64 sorted: low << 32 | high
    left_holds_right: np.ndarray  # bool, by key: low holds high (high may be removed for low)
    right_holds_left: np.ndarray
    scores: PairScores   # by key, oriented low → high (left = low)
    margin: float = 0.05  # fuller_margin: see the module docstring

    @staticmethod
    def build(scores: PairScores, held_left: np.ndarray, held_right: np.ndarray,
              margin: float = 0.05) -> KnownPairs:
        """``held_left[i]``: right holds left; ``held_right[i]``: left holds right."""
        swap = scores.left > scores.right
        if swap.any():
            scores = scores.oriented(swap)
            held_left, held_right = np.where(swap, held_right, held_left), np.where(swap, held_left, held_right)
        keys = (scores.left.astype(np.uint64) << np.uint64(32)) | scores.right.astype(np.uint64)
        if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):  # candidates come sorted and unique
            order = np.argsort(keys, kind="stable")
            first = run_starts(keys[order])
            rows = order[first]
            keys, held_left, held_right, scores = keys[rows], held_left[rows], held_right[rows], scores.select(rows)
        return KnownPairs(keys, np.asarray(held_right, bool), np.asarray(held_left, bool), scores, margin)

    def merged(self, other: KnownPairs) -> KnownPairs:
        scores = PairScores.concatenate([self.scores, other.scores])
        held_left = np.concatenate([self.right_holds_left, other.right_holds_left])
        held_right = np.concatenate([self.left_holds_right, other.left_holds_right])
        return KnownPairs.build(scores, held_left, held_right, self.margin)

    def find(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Row of each pair (a[i], b[i]) in this table, -1 when unknown."""
        keys = (np.minimum(a, b).astype(np.uint64) << np.uint64(32)) | np.maximum(a, b).astype(np.uint64)
        if len(self.keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[at] == keys, at, -1)

    def holds(self, holder: np.ndarray, held: np.ndarray) -> np.ndarray:
        """Whether ``holder[i]`` holds ``held[i]`` (False when the pair is unknown)."""
        row = self.find(holder, held)
        known = row >= 0
        safe = np.maximum(row, 0)
        by_low = np.where(holder < held, self.left_holds_right[safe], self.right_holds_left[safe])
        return np.asarray(known & by_low)

    def dominance(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (dominant, dominated) edge: the first holds the second, and is not held back or
        holds it better by ``margin``."""
        low, high = (self.keys >> np.uint64(32)).astype(np.int64), (self.keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
        forward, backward = self.left_holds_right, self.right_holds_left
        high_in_low, low_in_high = self.scores.right_story_in_left, self.scores.left_story_in_right
        low_wins = forward & (~backward | (high_in_low - low_in_high >= self.margin))
        high_wins = backward & (~forward | (low_in_high - high_in_low >= self.margin))
        return np.concatenate([low[low_wins], high[high_wins]]), np.concatenate([high[low_wins], low[high_wins]])


#: verify(a, b) -> KnownPairs of those pairs (measured now).
Verifier = Callable[[np.ndarray, np.ndarray], KnownPairs]


@dataclass(frozen=True)
class Clusters:
    """Each node's representative node; ``kept_unresolved`` counts documents kept because a
    component ran out of rounds; ``verified_late`` the pairs verified on demand;
    ``kept_for_loss`` the removals undone because no kept document held their furniture."""

    representative: np.ndarray  # int64 per node
    known: KnownPairs
    verified_late: int
    kept_unresolved: int
    kept_for_loss: int = 0


def cluster(count: int, known: KnownPairs, rank: np.ndarray, verify: Verifier | None = None, *,
            fixed: np.ndarray | None = None, verify_rounds: int = Config.verify_rounds,
            max_rounds: int = Config.max_rounds) -> Clusters:
    """Representatives of ``count`` nodes from verified pairs; ``rank`` (lower first, distinct)
    is the keep policy. See the module docstring. ``fixed`` nodes (a reference corpus: last
    month's kept documents) are never placed under another node: each represents itself, and
    first takes every other node it holds (the best-ranked fixed holder when several do)."""
    rank = np.asarray(rank, dtype=np.int64)
    representative = np.arange(count, dtype=np.int64)
    if fixed is not None and fixed.any():
        known = never_held(known, fixed)
        if verify is not None:
            verify = _masking(verify, fixed)
    component = _components(count, known)
    unplaced = np.bincount(component, minlength=count)[component] > 1
    if fixed is not None and fixed.any():
        unplaced &= ~fixed
        _join_fixed(known, fixed, rank, representative, unplaced)
    late = rounds = 0
    while unplaced.any() and rounds < max_rounds:
        reps = _round_representatives(component, unplaced, rank, known)
        unplaced[reps] = False
        rep_of = np.full(count, -1, dtype=np.int64)
        rep_of[component[reps]] = reps
        members = np.flatnonzero(unplaced & (rep_of[component] >= 0))
        holder = rep_of[component[members]]
        if verify is not None and rounds < verify_rounds:
            unknown = known.find(holder, members) < 0
            if unknown.any():
                known = known.merged(verify(holder[unknown], members[unknown]))
                late += int(unknown.sum())
        held = known.holds(holder, members)
        representative[members[held]] = holder[held]
        unplaced[members[held]] = False
        rounds += 1
    return Clusters(representative, known, late, int(unplaced.sum()))


def never_held(known: KnownPairs, fixed: np.ndarray) -> KnownPairs:
    """The pairs with a fixed node never the one held: it is neither removed nor placed under
    another node, and links where it would be held join no component (every engine clusters on
    the same links)."""
    low, high = (known.keys >> np.uint64(32)).astype(np.int64), (known.keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
    return KnownPairs(known.keys, known.left_holds_right & ~fixed[high], known.right_holds_left & ~fixed[low],
                      known.scores, known.margin)


def _masking(verify: Verifier, fixed: np.ndarray) -> Verifier:
    return lambda left, right: never_held(verify(left, right), fixed)


def _join_fixed(known: KnownPairs, fixed: np.ndarray, rank: np.ndarray, representative: np.ndarray,
                unplaced: np.ndarray) -> None:
    """Place every unplaced node that a fixed node holds under its best-ranked fixed holder."""
    low, high = (known.keys >> np.uint64(32)).astype(np.int64), (known.keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
    holder = np.concatenate([low[known.left_holds_right], high[known.right_holds_left]])
    held = np.concatenate([high[known.left_holds_right], low[known.right_holds_left]])
    usable = fixed[holder] & unplaced[held]
    holder, held = holder[usable], held[usable]
    order = np.lexsort((rank[holder], held))
    first = run_starts(held[order])
    chosen_holder, chosen = holder[order][first], held[order][first]
    representative[chosen] = chosen_holder
    unplaced[chosen] = False


def _components(count: int, known: KnownPairs) -> np.ndarray:
    """Connected components over pairs where one side holds the other."""
    from scipy.sparse import coo_matrix  # imported here: scipy.sparse costs a third of a second to import
    from scipy.sparse.csgraph import connected_components

    linked = known.left_holds_right | known.right_holds_left
    low = (known.keys[linked] >> np.uint64(32)).astype(np.int64)
    high = (known.keys[linked] & np.uint64(0xFFFFFFFF)).astype(np.int64)
    graph = coo_matrix((np.ones(len(low), dtype=np.int8), (low, high)), shape=(count, count))
    labels: np.ndarray = connected_components(graph, directed=False)[1]
    return labels.astype(np.int64)


def _round_representatives(component: np.ndarray, unplaced: np.ndarray, rank: np.ndarray,
                           known: KnownPairs) -> np.ndarray:
    """One representative per component with unplaced nodes: the best-ranked unplaced node that
    no unplaced node dominates (the best-ranked unplaced node if every one is dominated: a cycle)."""
    holder, held = known.dominance()
    blocking = unplaced[holder] & unplaced[held]
    blocked = np.zeros(len(component), dtype=bool)
    blocked[held[blocking]] = True
    eligible = unplaced & ~blocked
    has_eligible = np.bincount(component[eligible], minlength=len(component)) > 0
    candidates = np.flatnonzero(eligible | (unplaced & ~has_eligible[component]))
    order = np.lexsort((rank[candidates], component[candidates]))
    chosen = candidates[order]
    return np.asarray(chosen[run_starts(component[chosen])])
