"""Repetition inside one document: repeated paragraphs, and the figures corpus builders filter on.

Scraped pages repeat themselves: a body printed twice (the second copy with an
ad call fused in), a headline repeated, a widget on every screen. ``repeats``
finds groups of paragraphs that repeat each other, exactly or nearly (by
MinHash on the same shingles as the index), and computes the repetition
figures of the Gopher rules (Rae et al. 2021): duplicate line and paragraph
fractions by count and by characters, the character share of the most common
2-, 3- and 4-gram, and the character share of repeated 5- to 10-grams.

Repeated means "repeats an earlier one": in a group, the first occurrence is
the original and every later one counts as a repeat.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neardup.arrays import sorted_unique
from neardup.config import Config
from neardup.document import Document, as_document
from neardup.errors import ConfigError
from neardup.match.candidates import bucket_keys, bucket_pairs, split_pairs
from neardup.records import Fingerprints
from neardup.sketch.fingerprint import fingerprint
from neardup.sketch.lsh import Bands, fold32
from neardup.sketch.signatures import estimate_jaccard
from neardup.text.normalize import normalize
from neardup.text.shingles import ngram_series, token_hashes

#: Paragraph pairs compared per chunk (bounds the temporary boolean array).
_PAIR_CHUNK = 1 << 18
#: Above this many paragraphs, candidate pairs come from LSH instead of all pairs.
_ALL_PAIRS_LIMIT = 2000
_BLANK_LINES = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class RepeatGroup:
    """Paragraphs that repeat each other; the first is the original."""

    paragraphs: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    kind: str          # "exact" (same matching form) or "near"
    similarity: float  # lowest estimated Jaccard of a member with the first
    identical_text: bool  # the original texts are equal too (not only their matching forms)

    def to_dict(self) -> dict[str, Any]:
        """The group as JSON values."""
        return {"paragraphs": list(self.paragraphs), "spans": [list(s) for s in self.spans],
                "kind": self.kind, "similarity": round(self.similarity, 4),
                "identical_text": self.identical_text}


@dataclass(frozen=True)
class RepeatReport:
    """What repeats inside one document."""

    id: str
    paragraphs: int
    body_paragraphs: int
    repeated_paragraphs: int
    duplicate_fraction: float
    duplicate_char_fraction: float
    groups: tuple[RepeatGroup, ...]
    gopher: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as the JSON line ``repeats --json`` prints."""
        return {"id": self.id, "paragraphs": self.paragraphs, "body_paragraphs": self.body_paragraphs,
                "repeated_paragraphs": self.repeated_paragraphs,
                "duplicate_fraction": round(self.duplicate_fraction, 4),
                "duplicate_char_fraction": round(self.duplicate_char_fraction, 4),
                "groups": [g.to_dict() for g in self.groups],
                **{k: round(v, 4) for k, v in self.gopher.items()}}


def repeats(document: Document | str | Sequence[str], config: Config | None = None) -> RepeatReport:
    """Find the paragraphs of ``document`` that repeat an earlier one, and the Gopher figures.

    ``duplicate_fraction`` is over *body* paragraphs (at least
    ``config.min_paragraph_words`` words), so bylines and menu lines neither
    inflate nor dilute it; ``duplicate_char_fraction`` is over all characters of all
    paragraphs.
    """
    if config is not None and not isinstance(config, Config):
        raise ConfigError(f"config must be a neardup.Config, got {type(config).__name__}")
    config = config or Config()
    doc = as_document(document)
    prints = fingerprint([doc], config)
    groups = _groups(doc, prints, config)
    lengths = np.array([e - s for s, e in doc.paragraphs], dtype=np.int64)
    repeated = np.zeros(len(doc.paragraphs), dtype=bool)
    for group in groups:
        repeated[list(group.paragraphs[1:])] = True
    body = prints.paragraph_words >= config.min_paragraph_words
    return RepeatReport(
        id=doc.id,
        paragraphs=len(doc.paragraphs),
        body_paragraphs=int(body.sum()),
        repeated_paragraphs=int(repeated.sum()),
        duplicate_fraction=float(repeated[body].sum() / body.sum()) if body.any() else 0.0,
        duplicate_char_fraction=float(lengths[repeated].sum() / lengths.sum()) if lengths.sum() else 0.0,
        groups=tuple(groups),
        gopher=gopher_figures(doc.text),
    )


def _groups(doc: Document, prints: Fingerprints, config: Config) -> list[RepeatGroup]:
    """Groups of paragraphs joined by repeat pairs (connected components), in text order."""
    n = len(prints.paragraph_sizes)
    left, right = _repeat_pairs(prints, config)
    if len(left) == 0:
        return []
    from scipy.sparse import coo_matrix  # imported here: scipy.sparse costs half a second at start-up
    from scipy.sparse.csgraph import connected_components
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels, minlength=n)
    members = np.flatnonzero(sizes[labels] > 1)  # in text order
    order = members[np.argsort(labels[members], kind="stable")]
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    groups = [_group(doc, prints, part.tolist()) for part in np.split(order, bounds)]
    return sorted(groups, key=lambda g: g.paragraphs[0])


def _repeat_pairs(prints: Fingerprints, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """(earlier, later) paragraphs that repeat each other: the same matching form (any paragraph
    with a word), or near (body paragraphs only; one paragraph per matching form is compared,
    its exact repeats join through it). Bounded work: candidates from LSH band buckets with
    the cap the dedup uses, verified on the signatures in vectorised chunks."""
    digests, words = prints.paragraph_digests, prints.paragraph_words
    worded = np.flatnonzero(words > 0)
    _, first, inverse = np.unique(digests[worded], return_index=True, return_inverse=True)
    exact_left, exact_right = worded[first[inverse.ravel()]], worded
    repeat = exact_left != exact_right
    body = np.flatnonzero(words >= config.min_paragraph_words)
    _, body_first = np.unique(digests[body], return_index=True)
    distinct = body[np.sort(body_first)]
    left, right = (np.zeros(0, np.int64),) * 2
    if len(distinct) >= 2:
        left, right = _near_pairs(prints, distinct, config)
    return (np.concatenate([exact_left[repeat], left]).astype(np.int64),
            np.concatenate([exact_right[repeat], right]).astype(np.int64))


def _near_pairs(prints: Fingerprints, rows: np.ndarray, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Verified near-repeat pairs among ``rows`` (paragraph numbers, ascending)."""
    signatures = prints.paragraph_signatures[rows]
    i, j = _candidate_pairs(signatures, config)
    keep = np.zeros(len(i), dtype=bool)
    sizes = prints.paragraph_sizes[rows]
    for lo in range(0, len(i), _PAIR_CHUNK // 8):
        a, b = i[lo:lo + _PAIR_CHUNK // 8], j[lo:lo + _PAIR_CHUNK // 8]
        jac = estimate_jaccard(signatures[a], signatures[b])
        keep[lo:lo + len(a)] = _repeat(jac, sizes[a], sizes[b], config)
    return rows[i[keep]], rows[j[keep]]


def _repeat(jac: np.ndarray, left_sizes: np.ndarray, right_sizes: np.ndarray, config: Config) -> np.ndarray:
    """Whether paragraph pairs repeat each other: Jaccard at the repeat threshold, or one held in the other."""
    left, right = left_sizes.astype(float), right_sizes.astype(float)
    shared = np.where(jac >= config.noise_floor, jac * (left + right) / (1.0 + jac), 0.0)
    shared = np.minimum(shared, np.minimum(left, right))
    inside = shared / np.maximum(1.0, np.minimum(left, right))
    return np.asarray((jac >= config.repeat_threshold) | (inside >= config.paragraph_containment))


def _candidate_pairs(signatures: np.ndarray, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j among body paragraphs worth verifying: every pair above a low Jaccard
    for a few paragraphs (row blocks, bounded memory), else pairs sharing an LSH band, a
    bucket of more than ``config.bucket_cap`` paragraphs giving only the pairs of its first
    ``config.bucket_pivots`` with the others (an earlier paragraph is the original)."""
    n = len(signatures)
    if n <= _ALL_PAIRS_LIMIT:
        floor = min(config.repeat_threshold, 0.3)
        step = max(1, _PAIR_CHUNK // max(1, n))
        lefts, rights = [], []
        for lo in range(0, n, step):
            jac = paragraph_jaccard(signatures[lo:lo + step], signatures)
            a, b = np.nonzero(jac >= floor)
            a += lo
            lefts.append(a[a < b])
            rights.append(b[a < b])
        return np.concatenate(lefts), np.concatenate(rights)
    bands, rows = Bands.of(config).paragraph
    keys = fold32(bucket_keys(signatures, bands, rows)).astype(np.uint64)
    values = sorted_unique(((keys << np.uint64(32)) | np.arange(n, dtype=np.uint64)[:, None]).ravel())
    pairs, _ = bucket_pairs(values, np.arange(n, dtype=np.uint32), config.bucket_cap, config.bucket_pivots)
    return split_pairs(sorted_unique(pairs))


def _group(doc: Document, prints: Fingerprints, members: list[int]) -> RepeatGroup:
    digests = prints.paragraph_digests[members]
    sims = paragraph_jaccard(prints.paragraph_signatures[members[:1]], prints.paragraph_signatures[members])[0]
    spans = tuple((int(prints.paragraph_spans[m, 0]), int(prints.paragraph_spans[m, 1])) for m in members)
    kind = "exact" if (digests == digests[0]).all() else "near"
    identical = len({doc.text[s:e] for s, e in spans}) == 1
    return RepeatGroup(tuple(members), spans, kind, float(sims.min()) if kind == "near" else 1.0, identical)


def gopher_figures(text: str) -> dict[str, float]:
    """The repetition figures of the Gopher quality rules, on one text."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    paragraphs = [p.strip() for p in _BLANK_LINES.split(text) if p.strip()]
    figures = {
        "dup_line_frac": _duplicate_share(lines, by_chars=False),
        "dup_line_char_frac": _duplicate_share(lines, by_chars=True),
        "dup_para_frac": _duplicate_share(paragraphs, by_chars=False),
        "dup_para_char_frac": _duplicate_share(paragraphs, by_chars=True),
    }
    tokens, lengths = token_hashes(normalize(text))
    total = float(lengths.sum())
    figures.update({f"top_{n}gram_char_frac": 0.0 for n in (2, 3, 4)})
    figures.update({f"dup_{n}gram_char_frac": 0.0 for n in range(5, 11)})
    for n, grams in ngram_series(tokens, 10):
        if 2 <= n <= 4:
            figures[f"top_{n}gram_char_frac"] = _top_ngram_share(grams, lengths, n, total)
        elif n >= 5:
            figures[f"dup_{n}gram_char_frac"] = _duplicate_ngram_share(grams, lengths, n, total)
    return figures


def _duplicate_share(items: list[str], by_chars: bool) -> float:
    """Share (by count or characters) of items equal to an earlier item."""
    seen: set[str] = set()
    dup = total = 0
    for item in items:
        weight = len(item) if by_chars else 1
        total += weight
        if item in seen:
            dup += weight
        seen.add(item)
    return dup / total if total else 0.0


def _top_ngram_share(grams: np.ndarray, lengths: np.ndarray, n: int, total: float) -> float:
    """Characters covered by the most frequent n-gram (``grams``: the n-grams' hashes), over all
    characters of words."""
    if len(grams) == 0 or total == 0:
        return 0.0
    firsts, counts = _first_occurrences(grams)
    top = int(np.argmax(counts))   # the smallest n-gram value among the most frequent, as np.unique gives
    if counts[top] < 2:
        return 0.0
    first = int(firsts[top])
    chars = lengths[first:first + n].sum()
    return float(min(1.0, counts[top] * chars / total))


def _duplicate_ngram_share(grams: np.ndarray, lengths: np.ndarray, n: int, total: float) -> float:
    """Characters of words inside an n-gram that repeats an earlier occurrence (``grams``: the
    n-grams' hashes; ``lengths``: the tokens' lengths)."""
    if len(grams) == 0 or total == 0:
        return 0.0
    firsts, _ = _first_occurrences(grams)
    later = np.ones(len(grams), dtype=bool)
    later[firsts] = False
    repeat = np.flatnonzero(later)
    size = len(lengths) + 1
    cover = np.bincount(repeat, minlength=size) - np.bincount(repeat + n, minlength=size)
    covered = np.cumsum(cover)[:-1] > 0
    return float(lengths[covered].sum() / total)


def _first_occurrences(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct value, ascending: the position of its first occurrence and its count (one
    unstable sort — the SIMD one — and a minimum per run, rather than a stable sort)."""
    order = np.argsort(values)
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return np.minimum.reduceat(order, starts), np.diff(np.append(starts, len(values)))


def paragraph_jaccard(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of every paragraph signature of ``left`` with every one of ``right``."""
    out = np.zeros((len(left), len(right)))
    if len(left) == 0 or len(right) == 0:
        return out
    step = max(1, _PAIR_CHUNK // max(1, len(right)))
    for lo in range(0, len(left), step):
        out[lo:lo + step] = estimate_jaccard(left[lo:lo + step, None, :], right[None, :, :])
    return out
