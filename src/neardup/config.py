"""The one typed configuration every stage reads, and which is stored beside every index.

Changing any field that affects fingerprints (``num_perm``, ``seed``,
``shingle_size``, ``normalization_version``) makes signatures incomparable;
:meth:`Config.check_compatible` turns such a mix into an error instead of
silently wrong answers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from neardup.errors import ConfigError

NORMALIZATION_VERSION = 1

#: Fields that change the fingerprints themselves: indexes made with other
#: values cannot be queried with this configuration.
FINGERPRINT_FIELDS = ("num_perm", "seed", "shingle_size", "normalization_version")


@dataclass(frozen=True)
class Config:
    """Parameters of fingerprinting, candidate search and the decisions on top.

    Thresholds are Jaccard similarities (|A∩B| / |A∪B|) over sets of word
    shingles, or containments (|A∩B| / |A|), all in [0, 1].
    """

    #: MinHash permutations per signature (paragraphs and articles alike).
    num_perm: int = 128
    #: Seed of the permutations, as in ``datasketch.MinHash(seed=...)``.
    seed: int = 1
    #: Words per shingle (characters for scripts written without spaces).
    shingle_size: int = 5
    #: Version of the matching normal form; bumped whenever normalisation changes.
    normalization_version: int = NORMALIZATION_VERSION
    #: LSH tuning threshold for paragraph candidates.
    paragraph_lsh_threshold: float = 0.4
    #: LSH tuning threshold for article candidates.
    article_lsh_threshold: float = 0.5
    #: (false-positive weight, false-negative weight) used to derive bands and rows.
    lsh_weights: tuple[float, float] = (0.5, 0.5)
    #: Explicit (bands, rows) for paragraphs, bypassing the derivation.
    paragraph_bands: tuple[int, int] | None = None
    #: Explicit (bands, rows) for articles, bypassing the derivation.
    article_bands: tuple[int, int] | None = None
    #: Article Jaccard at or above which a match is a ``near-duplicate``.
    threshold: float = 0.8
    #: Containment (either direction) at or above which a match is reported as ``partial``.
    min_containment: float = 0.3
    #: Both containments at or above this make a match a ``near-duplicate`` whatever its Jaccard.
    near_duplicate_containment: float = 0.9
    #: Containment-based decisions (``partial``, and ``near-duplicate`` by containment) need at least
    #: this many shared words, weighted as in containment, on each side: a shared template line
    #: ("Qtly div 10 cts vs 10 cts prior") between two short notices is not a copy.
    min_shared_words: float = 10.0
    #: Estimated paragraph Jaccard at or above which two paragraphs are "the same paragraph".
    paragraph_threshold: float = 0.5
    #: Paragraphs with fewer words are "short" (bylines, "Advertisement"): kept, but never
    #: used alone as evidence and excluded from the paragraph LSH.
    min_paragraph_words: int = 6
    #: Paragraph Jaccard at or above which two paragraphs of one document repeat each other.
    repeat_threshold: float = 0.5
    #: Boilerplate rule: a paragraph found in ``df`` indexed documents weighs
    #: ``min(1, limit / df)²`` in containment, with ``limit = max(boilerplate_min_df,
    #: boilerplate_ratio × median df of the document's other paragraphs)``: footers and
    #: templates recur far more often than the story paragraphs around them.
    boilerplate_min_df: int = 10
    boilerplate_ratio: float = 4.0
    #: Dedup removes a document in favour of another that holds it: same text, Jaccard >=
    #: ``threshold``, or its containment in the other >= this (swept on the development set:
    #: 0.6/0.7/0.8 give F1 0.997/0.996/0.993, 0.5 loses precision) ...
    partial_containment: float = 0.7
    #: ... with at least this share of its words lying in shingles the other holds, every word
    #: counted but furniture that other documents hold (checked against the kept documents once
    #: the clusters are known): what is removed must be in what is kept.
    min_coverage: float = 0.75
    #: ... and the other must hold at least this share of it directly, furniture included: a
    #: removal never rests on a headline with the rest of the document left to furniture.
    min_held: float = 0.5
    #: Paragraphs shorter than this are never furniture a removal may leave to other documents: a
    #: headline or a notice's company line tells two documents apart; footers, disclaimers and
    #: cookie notices are longer.
    furniture_words: int = 10
    #: Paragraphs of at least this many words carry a story of their own: a document is never
    #: removed for one that lacks such a paragraph of it that no other document holds (shorter
    #: lines — bylines, "ALSO READ" lines, share prompts — count only in ``min_coverage``).
    story_words: int = 20
    #: Of two documents that hold each other, the one holding the other better by this much
    #: (containment) is the fuller version, and is kept whatever the policy prefers.
    fuller_margin: float = 0.02
    #: Candidate buckets (documents sharing one band key) larger than this give only the pairs
    #: of their ``bucket_pivots`` best-ranked documents with the others, not all pairs.
    bucket_cap: int = 64
    bucket_pivots: int = 4
    #: Paragraphs weighing less than this in containment (boilerplate, short lines) propose no
    #: candidates through their band keys: a footer would make every page of its site a candidate.
    searchable_weight: float = 0.5
    #: One paragraph at least this much inside another is the same paragraph even when their
    #: Jaccard is low (a paragraph merged with its neighbour, or cut short): evidence and repeats.
    paragraph_containment: float = 0.8
    #: Estimated paragraph Jaccard below this is chance agreement of MinHash values, not shared text.
    noise_floor: float = 0.1
    #: A query verifies a candidate only if its estimated shared shingles reach this share of the
    #: containment asked for, or its estimated article Jaccard is within ``query_prefilter_margin``
    #: of ``threshold`` (boilerplate discounts can raise a weighted containment above the estimate).
    query_prefilter: float = 0.5
    query_prefilter_margin: float = 0.2
    #: Clustering rounds in which pairs a representative needs are verified on demand, and rounds
    #: after which a component's remaining documents are kept as they are (bounds a long chain).
    verify_rounds: int = 8
    max_rounds: int = 256
    #: Rounds of keeping removals that would lose text, a paragraph's best-ranked holder first;
    #: after the last, every removal still losing text is kept.
    loss_rounds: int = 8

    def __post_init__(self) -> None:
        _check_int("num_perm", self.num_perm, 1, 4096)
        _check_int("seed", self.seed, 0, 2**32 - 1)
        _check_int("shingle_size", self.shingle_size, 1, 64)
        _check_int("min_paragraph_words", self.min_paragraph_words, 0, 10_000)
        _check_int("boilerplate_min_df", self.boilerplate_min_df, 1, 2**62)
        _check_int("bucket_cap", self.bucket_cap, 2, 1 << 20)
        _check_int("bucket_pivots", self.bucket_pivots, 1, 1 << 10)
        _check_int("verify_rounds", self.verify_rounds, 0, 1 << 20)
        _check_int("max_rounds", self.max_rounds, 1, 1 << 20)
        _check_int("story_words", self.story_words, 1, 1 << 20)
        _check_int("furniture_words", self.furniture_words, 0, 1 << 20)
        _check_int("loss_rounds", self.loss_rounds, 1, 1 << 10)
        _check_number("min_shared_words", self.min_shared_words, 0.0, 1e12)
        _check_number("boilerplate_ratio", self.boilerplate_ratio, 1.0, 1e12)
        for name in ("paragraph_lsh_threshold", "article_lsh_threshold", "threshold",
                     "min_containment", "near_duplicate_containment", "paragraph_threshold",
                     "repeat_threshold", "partial_containment", "min_coverage", "min_held", "fuller_margin",
                     "searchable_weight", "paragraph_containment", "noise_floor", "query_prefilter",
                     "query_prefilter_margin"):
            _check_unit(name, getattr(self, name))
        weights = self.lsh_weights
        if (not isinstance(weights, tuple) or len(weights) != 2
                or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and 0.0 <= w <= 1.0
                           for w in weights) or abs(sum(weights) - 1.0) > 1e-9):
            raise ConfigError(f"lsh_weights must be two weights in [0, 1] summing to 1, got {weights!r}")
        for name in ("paragraph_bands", "article_bands"):
            bands = getattr(self, name)
            if bands is not None:
                if not isinstance(bands, tuple) or len(bands) != 2 \
                        or not all(isinstance(v, int) and not isinstance(v, bool) for v in bands):
                    raise ConfigError(f"{name} must be (bands, rows), two integers, got {bands!r}")
                b, r = bands
                if b < 1 or r < 1 or b * r > self.num_perm:
                    raise ConfigError(f"{name}={bands!r}: need bands*rows <= num_perm={self.num_perm}")

    def with_options(self, **changes: Any) -> Config:
        """A copy with some fields changed; ``None`` values are ignored."""
        try:
            return replace(self, **{k: v for k, v in changes.items() if v is not None})
        except TypeError as err:  # a field that does not exist
            raise ConfigError(str(err)) from None

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values (what ``config.json`` holds)."""
        return asdict(self)

    def to_json(self) -> str:
        """The settings as the JSON stored beside every index."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """The configuration ``to_dict`` gave; unknown fields and bad values are ConfigError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration fields: {', '.join(unknown)}")
        values = dict(data)
        try:
            for name in ("lsh_weights", "paragraph_bands", "article_bands"):
                if values.get(name) is not None:
                    values[name] = tuple(values[name])
            return cls(**values)
        except TypeError as err:
            raise ConfigError(str(err)) from None

    @classmethod
    def from_json(cls, text: str) -> Config:
        """The configuration ``to_json`` gave (as stored beside an index)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"configuration is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError("configuration must be a JSON object")
        return cls.from_dict(data)

    def check_compatible(self, other: Config) -> None:
        """Raise unless signatures made under ``other`` compare with ours."""
        diffs = [f"{name}: {getattr(other, name)!r} != {getattr(self, name)!r}"
                 for name in FINGERPRINT_FIELDS if getattr(self, name) != getattr(other, name)]
        if diffs:
            raise ConfigError("fingerprint parameters differ (" + "; ".join(diffs) + ")")


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{name} must be a finite number in [{low:g}, {high:g}], got {value!r}")


def _check_unit(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}")
