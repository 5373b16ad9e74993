"""An independent judge of "nothing lost" for a deduplication run.

Reads the input corpus and what a dedup tool kept, and measures, for every removed document, how much
of its text survives in the kept documents. It imports nothing from neardup (standard library and
numpy only), uses none of its normalisation, paragraphs, shingles or scores, and can judge any tool's
output.

Inputs
------
* INPUT: the corpus, JSON Lines (``.gz`` too), one record a line with an id field and a text field
  (``--id-field``/``--text-field``, default ``id``/``text``). The text is a string or a list of
  paragraph strings (joined with "\\n"). A record without a usable text has no words. A repeated id
  keeps its first record; the repeats are counted and ignored. Lines that are not JSON objects with an
  id are counted and skipped.
* CLUSTERS: one JSON line per input document (neardup's ``--clusters``): ``id``, ``cluster`` (the
  representative's id), ``representative`` (bool; when absent, ``cluster == id``) and ``kind`` (only
  displayed); the field names are options. Kept documents are the rows with representative true;
  removed documents are the rows with representative false, and also the input documents CLUSTERS
  does not list (reported apart: a document a tool silently dropped is removed, with no
  representative). Instead of CLUSTERS, ``--kept KEPT`` names a JSON Lines file of the kept records
  (their id field; a line may also be a bare JSON string or number): every other input document is
  removed, and the checks against a representative are not available. Kept texts are always read
  from INPUT, by id.

Definitions
-----------
* Words: the text as a reader sees it -- HTML tags (``<p>``, ``</a href=...>``, any HTML element
  name, case-insensitive, followed by whitespace, ``/`` or ``>``), comments, ``<!DOCTYPE ...>`` and
  ``<?...?>`` replaced by a space (the contents of elements, scripts' included, are kept), then
  entities decoded by ``html.unescape`` -- lower-cased, then ``re.findall(r"\\w+", ...)`` (Python,
  Unicode). Only HTML element names count as tags, so Reuters' ticker marks such as ``<GM>`` stay
  text (``<A ...>``, ``<B>``, ``<S>`` and other element names do not).
* Grams: the word 5-grams of a document (position p covers words p..p+4), across paragraph and
  sentence breaks. A document of 1-4 words has no 5-gram; its one "gram" is its whole word sequence.
* Kept grams: every 5-gram of every kept document.
* Covered word of a removed document (>= 5 words): a word at one of the 5 positions of some 5-gram of
  the document that is also a 5-gram of SOME kept document. A removed document of 1-4 words: all its
  words are covered when its whole word sequence occurs contiguously in some kept document (a kept
  document of any length), else none is (our choice: a short text is one unit, judged whole). A
  document without words has nothing to lose.
* Share gone of a removed document: uncovered words / words. It "loses text" when the share is over
  0.25 (strictly).
* Removed words gone: sum of uncovered words over removed documents / sum of their words.
* Pairwise: the same with its OWN representative in place of all kept documents (words in no 5-gram
  of the representative; a short document: its sequence in the representative) -> pairwise words
  gone. A representative that is not a kept document of INPUT holds nothing.
* Unjustified removal: with D = the distinct 5-grams of the removed document and R those of its
  representative, |D & R| / |D| < 1/3 AND the Jaccard |D & R| / |D | R| < 0.5. A short (1-4 words)
  removed document: unjustified when its word sequence does not occur in the representative. A
  removal without words is never unjustified; one with words and no kept representative always is.

How it works (scale: 1M documents of ~3 KB on 2 cores and 24 GB)
----------------------------------------------------------------
Each word is hashed with Python's ``hash`` (64-bit SipHash, salted per process: every comparison is
inside one process) and a k-gram's hash chains the word hashes with the splitmix64 finaliser in numpy
over a whole batch of documents at once: h1 = mix(w0 ^ S), h(j+1) = mix(h(j) * G + wj). Measured on
Reuters-21578: blake2b (digest_size=8) over the joined words costs ~1 us a gram (500M grams: ~8
minutes); the word hash is ~0.1 us a word and the numpy chain a few ns; tokenising (``re.findall``,
~3M words/s) dominates. A false "covered" needs a 64-bit collision with one of the kept grams
(~|kept grams| / 2^64, about 2e-11 a gram at 1M documents).

Pass 0 parses every line for its id and classifies it (kept, removed, other); short removed documents
(< 5 words, found by looking for a fifth word only) are tokenised here. Pass 1 reads the kept
documents only: all their 5-gram hashes, sorted and deduplicated into one numpy array; the 5-grams of
representatives that have removals as 64-bit (representative, gram) keys in a second array; and the
short removed sequences looked up among the kept documents' k-grams. Pass 2 reads the removed
documents only and looks their 5-grams up in both arrays (``np.searchsorted``), in batches. Memory:
the two arrays (8 bytes a distinct kept gram) plus one batch; the per-id maps of CLUSTERS.

Run (the data is read, never copied)::

    neardup dedup corpus.jsonl --out kept.jsonl --clusters clusters.jsonl
    python benchmarks/judge.py corpus.jsonl clusters.jsonl [--json report.json] [--show 10]
    python benchmarks/judge.py corpus.jsonl --kept kept.jsonl

Prints a table: documents, kept, removed, removals that lose text (count and % of removals),
unjustified removals, removed and pairwise words gone %, the first ``--show`` removals of each kind
with an excerpt of the lost words, the time of each pass and the peak memory (``ru_maxrss``).
``--json FILE`` writes every figure, and every losing and unjustified removal. Exit code 0 whatever
it finds (a measurement), 2 on bad usage or unreadable files.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import html
import itertools
import json
import re
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

GRAM = 5
LOSE_TEXT_OVER = 0.25
HELD_BELOW = 1 / 3
JACCARD_BELOW = 0.5
BATCH_CHARS = 1 << 23
EXCERPT_CHARS = 160
EXIT_OK, EXIT_USAGE = 0, 2
KEPT, REMOVED = 1, 2

_ELEMENTS = (  # HTML element names, current and obsolete
    "a|abbr|acronym|address|applet|area|article|aside|audio|b|base|basefont|bdi|bdo|big|blink|blockquote|body|"
    "br|button|canvas|caption|center|cite|code|col|colgroup|data|datalist|dd|del|details|dfn|dialog|dir|div|dl|"
    "dt|em|embed|fieldset|figcaption|figure|font|footer|form|frame|frameset|h1|h2|h3|h4|h5|h6|head|header|"
    "hgroup|hr|html|i|iframe|img|input|ins|kbd|label|legend|li|link|main|map|mark|marquee|menu|meta|meter|nav|"
    "nobr|noembed|noframes|noscript|object|ol|optgroup|option|output|p|param|picture|pre|progress|q|rp|rt|"
    "ruby|s|samp|script|section|select|small|source|span|strike|strong|style|sub|summary|sup|svg|table|tbody|"
    "td|template|textarea|tfoot|th|thead|time|title|tr|track|tt|u|ul|var|video|wbr"
)
TAG = re.compile(
    r"<!--.*?-->|<![^<>]*>|<\?[^<>]*\?>|</?(?:" + _ELEMENTS + r")(?=[\s/>])[^<>]*>",
    re.IGNORECASE | re.DOTALL,
)
WORD = re.compile(r"\w+")

_MUL = np.uint64(0x9E3779B97F4A7C15)
_SEED = np.uint64(0x243F6A8885A308D3)
_PAIR = np.uint64(0xD6E8FEB86659FD93)
_POLY = np.uint64(0x100000001B3)


# -- words and hashes ------------------------------------------------------------------------------


def reader_text(text: str) -> str:
    """The text as a reader sees it: tags dropped (a space each), entities decoded, lower-cased."""
    if "<" in text:
        text = TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return text.lower()


def words_of(text: str) -> list[str]:
    """The words of a text by the definition (re.findall); tokenize() finds the same, faster."""
    return WORD.findall(reader_text(text))


def is_short(text: str) -> bool:
    """Fewer than GRAM words, without tokenising the whole text."""
    return sum(1 for _ in itertools.islice(WORD.finditer(reader_text(text)), GRAM)) < GRAM


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise on uint64 (wrapping arithmetic); x is consumed."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@functools.cache
def word_characters() -> np.ndarray:
    """Per code point: is it matched by \\w (str patterns: str.isalnum() or "_"; checked against re in testing)."""
    table = np.fromiter((chr(c).isalnum() for c in range(0x110000)), dtype=bool, count=0x110000)
    table[ord("_")] = True
    return table


def powers(size: int) -> np.ndarray:
    """_POLY ** i for i < size, wrapping."""
    factors = np.full(max(size, 1), _POLY, dtype=np.uint64)
    factors[0] = 1
    return np.cumprod(factors)


@dataclass
class Tokens:
    """The words of some texts joined by newlines: where each starts and ends (code points), their hashes."""

    text: str
    starts: np.ndarray
    ends: np.ndarray
    hashes: np.ndarray

    def words(self, first: int, last: int) -> list[str]:
        return [self.text[a:b] for a, b in zip(self.starts[first:last].tolist(), self.ends[first:last].tolist())]


def tokenize(texts: list[str]) -> Tokens:
    """The \\w+ runs of the (reader) texts, found and hashed in numpy over their code points.

    A word's hash is mix(length * G ^ sum c_i * P^(n-1-i)) over its code points c_0..c_(n-1), wrapping.
    """
    text = "\n".join(texts)
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    in_word = word_characters()[points]
    edges = np.diff(in_word.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    if len(lengths) == 0:
        return Tokens(text, starts, ends, np.zeros(0, dtype=np.uint64))
    chars = points[in_word].astype(np.uint64)
    last = np.cumsum(lengths) - 1                       # each word's last character among the word characters
    exponent = np.repeat(last, lengths) - np.arange(len(chars))
    chars *= powers(int(lengths.max()))[exponent]
    poly = np.add.reduceat(chars, last - lengths + 1)
    return Tokens(text, starts, ends, mix(poly ^ lengths.astype(np.uint64) * _MUL))


def chain(hashes: np.ndarray, upto: int = GRAM) -> list[np.ndarray]:
    """[h1, ..., h_upto]: h_k[p] is the hash of the k words from position p (garbage past the end)."""
    padded = np.concatenate([hashes, np.zeros(upto, dtype=np.uint64)])
    size = len(hashes)
    h = mix(padded[:size] ^ _SEED)
    out = [h]
    for j in range(1, upto):
        h = mix(h * _MUL + padded[j : j + size])
        out.append(h)
    return out


def sequence_hash(hashes: np.ndarray) -> int:
    """The hash chain() gives the whole of a short word sequence."""
    return int(chain(hashes, len(hashes))[-1][0])


def pair_keys(owners: np.ndarray, grams: np.ndarray) -> np.ndarray:
    """64-bit keys of (document line, gram) pairs."""
    return mix(grams ^ mix(owners.astype(np.uint64) * _PAIR + _SEED))


def member(sorted_unique: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """queries[i] in sorted_unique, for each i (queries looked up in sorted order)."""
    if len(sorted_unique) == 0 or len(queries) == 0:
        return np.zeros(len(queries), dtype=bool)
    order = np.argsort(queries)
    ordered = queries[order]
    at = np.searchsorted(sorted_unique, ordered)
    np.minimum(at, len(sorted_unique) - 1, out=at)
    found = np.empty(len(queries), dtype=bool)
    found[order] = sorted_unique[at] == ordered
    return found


def first_of_each(values: np.ndarray) -> np.ndarray:
    """The position of one occurrence of each distinct value (np.unique's return_index, without a stable sort)."""
    order = np.argsort(values)
    if len(order) < 2:
        return order
    keep = np.empty(len(order), dtype=bool)
    keep[0] = True
    ordered = values[order]
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return order[keep]


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values, sorted in place (np.unique's hash table is several times slower here)."""
    values.sort()
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def merged(chunks: list[np.ndarray]) -> np.ndarray:
    """One sorted array of the distinct values of the chunks (the chunks list is emptied)."""
    values = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint64)
    chunks.clear()
    return distinct(values)


# -- reading ---------------------------------------------------------------------------------------


class UsageError(Exception):
    pass


def lines(path: Path) -> Iterator[bytes]:
    """Every physical line (blank ones too, so that line numbers agree between passes)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            yield from handle
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error}") from error


def parse(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return None
    return record if isinstance(record, dict) else None


def key(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else str(value)


def text_of(record: dict[str, Any], text_field: str) -> str:
    value = record.get(text_field)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(p for p in value if isinstance(p, str))
    return ""


@dataclass
class Verdicts:
    """What the run decided: kept ids, and for each removed id its representative and kind."""

    kept: set[str] = field(default_factory=set)
    removed: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    has_representatives: bool = True
    bad_rows: int = 0
    repeated_rows: int = 0


def read_clusters(path: Path, args: argparse.Namespace) -> Verdicts:
    verdicts = Verdicts()
    for line in lines(path):
        row = parse(line)
        doc = key(row.get(args.clusters_id_field)) if row else None
        cluster = key(row.get(args.cluster_field)) if row else None
        if row is None or doc is None or cluster is None:
            verdicts.bad_rows += bool(line.strip())
            continue
        if doc in verdicts.kept or doc in verdicts.removed:
            verdicts.repeated_rows += 1
            continue
        if representative(row.get(args.representative_field), doc, cluster):
            verdicts.kept.add(doc)
        else:
            verdicts.removed[doc] = (cluster, str(row.get(args.kind_field) or ""))
    return verdicts


def representative(flag: Any, doc: str, cluster: str) -> bool:
    """The kept flag: a bool, "true"/"false" (any case), 1/0; otherwise whether the row is its own cluster."""
    if isinstance(flag, bool):
        return flag
    if isinstance(flag, str) and flag.strip().lower() in ("true", "false", "1", "0"):
        return flag.strip().lower() in ("true", "1")
    if isinstance(flag, int) and flag in (0, 1):
        return bool(flag)
    return cluster == doc


def read_kept(path: Path, id_field: str) -> Verdicts:
    verdicts = Verdicts(has_representatives=False)
    for line in lines(path):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = line.decode("utf-8", "replace").strip()
        doc = key(value.get(id_field)) if isinstance(value, dict) else key(value)
        if doc is None:
            verdicts.bad_rows += 1
        elif doc in verdicts.kept:
            verdicts.repeated_rows += 1
        else:
            verdicts.kept.add(doc)
    return verdicts


# -- pass 0: what each line is ---------------------------------------------------------------------


@dataclass
class Plan:
    roles: bytearray                       # per physical line: 0 other, KEPT, REMOVED
    removed_reps: list[int]                # per removed document, in input order: its representative's line or -1
    needed_reps: set[int]                  # lines of kept documents that represent a removal
    short: dict[int, dict[int, int]]       # removed line -> {k: hash} of its 1-4 word sequence (k = {} if none)
    documents: int = 0
    kept: int = 0
    unlisted: int = 0                      # input documents CLUSTERS does not list (removed)
    repeated_ids: int = 0
    bad_records: int = 0
    unknown_ids: int = 0                   # CLUSTERS/KEPT ids not in INPUT
    foreign_reps: int = 0                  # removals whose representative is not a kept document of INPUT

    def rep_of_line(self) -> dict[int, int]:
        """Removed document's line -> its representative's line (or -1)."""
        return dict(zip((n for n, role in enumerate(self.roles) if role == REMOVED), self.removed_reps))

    def short_keys(self, k: int, rep_of_line: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The sorted hashes of the short removed sequences of k words, and their (representative, hash) keys."""
        hashes = [(seq[k], rep_of_line[line]) for line, seq in self.short.items() if k in seq]
        values = np.array([h for h, _ in hashes], dtype=np.uint64)
        with_rep = [(h, rep) for h, rep in hashes if rep >= 0]
        keys = pair_keys(np.array([rep for _, rep in with_rep], dtype=np.int64),
                         np.array([h for h, _ in with_rep], dtype=np.uint64))
        return distinct(values), distinct(keys)


def scan(path: Path, verdicts: Verdicts, args: argparse.Namespace) -> Plan:
    plan = Plan(roles=bytearray(), removed_reps=[], needed_reps=set(), short={})
    kept_line: dict[str, int] = {}
    seen: set[str] = set()
    rep_ids: list[str | None] = []
    for number, line in enumerate(lines(path)):
        plan.roles.append(0)
        record = parse(line)
        doc = key(record.get(args.id_field)) if record else None
        if doc is None:
            plan.bad_records += bool(line.strip())
            continue
        if doc in seen:
            plan.repeated_ids += 1
            continue
        seen.add(doc)
        plan.documents += 1
        if doc in verdicts.kept:
            plan.roles[number] = KEPT
            plan.kept += 1
            kept_line[doc] = number
            continue
        plan.roles[number] = REMOVED
        if verdicts.has_representatives:
            listed = verdicts.removed.get(doc)
            plan.unlisted += listed is None
            rep_ids.append(listed[0] if listed else None)
        text = text_of(record, args.text_field)
        if is_short(text):
            hashes = tokenize([reader_text(text)]).hashes
            plan.short[number] = {len(hashes): sequence_hash(hashes)} if len(hashes) else {}
    plan.unknown_ids = len((verdicts.kept | verdicts.removed.keys()) - seen)
    for rep in rep_ids:
        line = kept_line.get(rep, -1) if rep is not None else -1
        plan.foreign_reps += rep is not None and line < 0
        plan.removed_reps.append(line)
        if line >= 0:
            plan.needed_reps.add(line)
    if not verdicts.has_representatives:
        plan.removed_reps = [-1] * (plan.documents - plan.kept)
    return plan


# -- batches of documents --------------------------------------------------------------------------


@dataclass
class Batch:
    """Documents tokenised together: per document its line, id and reader text."""

    lines: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    chars: int = 0

    def add(self, line: int, doc: str, text: str) -> None:
        self.lines.append(line)
        self.ids.append(doc)
        self.texts.append(text)
        self.chars += len(text) + 1

    def tokens(self) -> tuple[Tokens, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(tokens, word offsets of the documents (one more than documents), owner line per word, document
        index per word, words left from each word to its document's end)."""
        tokens = tokenize(self.texts)
        bounds = np.cumsum([0] + [len(text) + 1 for text in self.texts])
        offsets = np.searchsorted(tokens.starts, bounds)
        lengths = np.diff(offsets)
        index = np.repeat(np.arange(len(lengths)), lengths)
        room = offsets[1:][index] - np.arange(len(index))
        return tokens, offsets, np.array(self.lines, dtype=np.int64)[index], index, room


def batches(path: Path, roles: bytearray, role: int, args: argparse.Namespace) -> Iterator[Batch]:
    batch = Batch()
    for number, line in enumerate(lines(path)):
        if number >= len(roles) or roles[number] != role:
            continue
        record = parse(line) or {}
        batch.add(number, key(record.get(args.id_field)) or "", reader_text(text_of(record, args.text_field)))
        if batch.chars >= BATCH_CHARS:
            yield batch
            batch = Batch()
    if batch.lines:
        yield batch


# -- pass 1: the kept documents --------------------------------------------------------------------


@dataclass
class KeptIndex:
    grams: np.ndarray                      # sorted distinct 5-gram hashes of all kept documents
    rep_grams: np.ndarray                  # sorted distinct (representative line, 5-gram) keys
    rep_sizes: dict[int, int]              # representative line -> its distinct 5-grams
    short_found: set[int]                  # short removed lines whose sequence occurs in a kept document
    short_in_rep: set[int]                 # ... in its own representative


def index_kept(path: Path, plan: Plan, args: argparse.Namespace) -> KeptIndex:
    rep_of_line = plan.rep_of_line()
    is_needed = np.zeros(len(plan.roles), dtype=bool)
    is_needed[sorted(plan.needed_reps)] = True
    wanted = {k: plan.short_keys(k, rep_of_line) for k in sorted({k for seq in plan.short.values() for k in seq})}
    found: set[int] = set()            # hashes of short sequences seen in a kept document
    found_at_rep: set[int] = set()     # (representative, hash) keys of those seen in the representative
    gram_chunks: list[np.ndarray] = []
    rep_chunks: list[np.ndarray] = []
    rep_sizes: dict[int, int] = {}
    for batch in batches(path, plan.roles, KEPT, args):
        tokens, _, owners, _, room = batch.tokens()
        hs = chain(tokens.hashes)
        whole = room >= GRAM
        gram_chunks.append(distinct(hs[GRAM - 1][whole]))
        at_rep = whole & is_needed[owners]
        keys = pair_keys(owners[at_rep], hs[GRAM - 1][at_rep])
        first = first_of_each(keys)
        rep_chunks.append(keys[first])
        lines_, counts = np.unique(owners[at_rep][first], return_counts=True)
        rep_sizes.update(zip(lines_.tolist(), counts.tolist()))
        for k, (short_hashes, short_keys) in wanted.items():
            fits = room >= k
            candidates = hs[k - 1][fits]
            found.update(candidates[member(short_hashes, candidates)].tolist())
            at_rep = fits & is_needed[owners]
            candidates = pair_keys(owners[at_rep], hs[k - 1][at_rep])
            found_at_rep.update(candidates[member(short_keys, candidates)].tolist())
    short_found, short_in_rep = set(), set()
    for line, seq in plan.short.items():
        for h in seq.values():
            if h in found:
                short_found.add(line)
            rep = rep_of_line.get(line, -1)
            if rep >= 0 and int(pair_keys(np.array([rep]), np.array([h], dtype=np.uint64))[0]) in found_at_rep:
                short_in_rep.add(line)
    return KeptIndex(merged(gram_chunks), merged(rep_chunks), rep_sizes, short_found, short_in_rep)


# -- pass 2: the removed documents -----------------------------------------------------------------


@dataclass
class Removal:
    id: str
    representative: str | None
    kind: str
    words: int
    gone: int                              # words in no 5-gram of any kept document
    gone_vs_rep: int                       # words in no 5-gram of its representative
    held: float | None                     # |D & R| / |D|
    jaccard: float | None
    excerpt: str = ""
    excerpt_vs_rep: str = ""

    @property
    def share_gone(self) -> float:
        return self.gone / self.words if self.words else 0.0

    @property
    def share_gone_vs_rep(self) -> float:
        return self.gone_vs_rep / self.words if self.words else 0.0

    @property
    def loses_text(self) -> bool:
        return self.share_gone > LOSE_TEXT_OVER

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "representative": self.representative, "kind": self.kind, "words": self.words,
                "share_gone": round(self.share_gone, 4), "share_gone_vs_representative":
                round(self.share_gone_vs_rep, 4), "held_by_representative": _round(self.held),
                "jaccard": _round(self.jaccard)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass
class Tally:
    removals: int = 0
    words: int = 0
    gone: int = 0
    gone_vs_rep: int = 0
    losing: list[Removal] = field(default_factory=list)
    unjustified: list[Removal] = field(default_factory=list)


def excerpt(words: list[str], lost: np.ndarray) -> str:
    """The lost words in order, runs separated by " … ", cut to EXCERPT_CHARS."""
    parts: list[str] = []
    for is_lost, run in itertools.groupby(zip(lost.tolist(), words), key=lambda pair: pair[0]):
        if is_lost:
            parts.append(" ".join(word for _, word in run))
    text = " … ".join(parts)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def spread(starts: np.ndarray) -> np.ndarray:
    """Words covered by the 5-grams that start where starts is true."""
    covered = starts.copy()
    for shift in range(1, GRAM):
        covered[shift:] |= starts[:-shift]
    return covered


def judge_removed(path: Path, plan: Plan, verdicts: Verdicts, kept: KeptIndex, args: argparse.Namespace) -> Tally:
    tally = Tally()
    reps = iter(plan.removed_reps)
    pairwise = verdicts.has_representatives
    for batch in batches(path, plan.roles, REMOVED, args):
        tokens, offsets, owners, index, room = batch.tokens()
        rep_of = np.array([next(reps) for _ in batch.lines], dtype=np.int64)
        whole = room >= GRAM
        grams = chain(tokens.hashes)[GRAM - 1]
        starts_any = np.zeros(len(grams), dtype=bool)
        starts_any[whole] = member(kept.grams, grams[whole])
        starts_rep = np.zeros(len(grams), dtype=bool)
        word_rep = rep_of[index]
        at_rep = whole & (word_rep >= 0)
        starts_rep[at_rep] = member(kept.rep_grams, pair_keys(word_rep[at_rep], grams[at_rep]))
        covered_any, covered_rep = spread(starts_any), spread(starts_rep)
        sizes, shared = distinct_grams(owners[whole], index[whole], grams[whole], starts_rep[whole], len(rep_of))
        for i, (line, doc, lo, hi) in enumerate(zip(batch.lines, batch.ids, offsets[:-1].tolist(),
                                                    offsets[1:].tolist())):
            if hi - lo < GRAM:
                covered_any[lo:hi] = line in kept.short_found
                covered_rep[lo:hi] = line in kept.short_in_rep
            rep_line = int(rep_of[i])
            removal = measure(doc, verdicts, hi - lo, covered_any[lo:hi], covered_rep[lo:hi], int(sizes[i]),
                              int(shared[i]), kept.rep_sizes.get(rep_line, 0) if rep_line >= 0 else 0, pairwise)
            record(tally, removal, functools.partial(tokens.words, lo, hi), ~covered_any[lo:hi],
                   ~covered_rep[lo:hi], args.show)
    return tally


def distinct_grams(owners: np.ndarray, index: np.ndarray, grams: np.ndarray, in_rep: np.ndarray,
                   documents: int) -> tuple[np.ndarray, np.ndarray]:
    """Per document of the batch: its distinct 5-grams, and how many of them its representative has."""
    first = first_of_each(pair_keys(owners, grams))
    sizes = np.bincount(index[first], minlength=documents)
    shared = np.bincount(index[first], weights=in_rep[first], minlength=documents).astype(np.int64)
    return sizes, shared


def measure(doc: str, verdicts: Verdicts, words: int, covered_any: np.ndarray, covered_rep: np.ndarray,
            size: int, shared: int, rep_size: int, pairwise: bool) -> Removal:
    """One removal's figures: size = its distinct 5-grams, shared = those its representative has (of rep_size)."""
    rep, kind = verdicts.removed.get(doc, (None, "unlisted")) if pairwise else (None, "")
    held = jaccard = None
    if pairwise and words:
        if words < GRAM:
            held = jaccard = float(covered_rep.all())
        else:
            held = shared / size if size else 0.0
            union = size + rep_size - shared
            jaccard = shared / union if union else 0.0
    gone_vs_rep = int(words - covered_rep.sum()) if pairwise else 0
    return Removal(doc, rep, kind, words, int(words - covered_any.sum()), gone_vs_rep, held, jaccard)


def unjustified(removal: Removal) -> bool:
    if removal.held is None or removal.jaccard is None:
        return False
    return removal.held < HELD_BELOW and removal.jaccard < JACCARD_BELOW


def record(tally: Tally, removal: Removal, words: Callable[[], list[str]], lost: np.ndarray,
           lost_vs_rep: np.ndarray, show: int) -> None:
    tally.removals += 1
    tally.words += removal.words
    tally.gone += removal.gone
    tally.gone_vs_rep += removal.gone_vs_rep
    if removal.loses_text:
        if len(tally.losing) < show:
            removal.excerpt = excerpt(words(), lost)
        tally.losing.append(removal)
    if unjustified(removal):
        if len(tally.unjustified) < show:
            removal.excerpt_vs_rep = excerpt(words(), lost_vs_rep)
        tally.unjustified.append(removal)


# -- report ----------------------------------------------------------------------------------------


def percent(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 3) if whole else None


def figures(args: argparse.Namespace, verdicts: Verdicts, plan: Plan, tally: Tally,
            timing: dict[str, float]) -> dict[str, Any]:
    pairwise = verdicts.has_representatives
    return {
        "input": str(args.input), "clusters": str(args.clusters) if args.clusters else None,
        "kept_file": str(args.kept) if args.kept else None,
        "documents": plan.documents, "kept": plan.kept, "removed": tally.removals,
        "removed_not_in_clusters": plan.unlisted,
        "lose_text": {"count": len(tally.losing), "percent_of_removals": percent(len(tally.losing), tally.removals),
                      "share_gone_over": LOSE_TEXT_OVER},
        "unjustified": {"count": len(tally.unjustified) if pairwise else None,
                        "held_below": round(HELD_BELOW, 6), "jaccard_below": JACCARD_BELOW},
        "removed_words": tally.words, "removed_words_gone": tally.gone,
        "removed_words_gone_percent": percent(tally.gone, tally.words),
        "pairwise_words_gone": tally.gone_vs_rep if pairwise else None,
        "pairwise_words_gone_percent": percent(tally.gone_vs_rep, tally.words) if pairwise else None,
        "problems": {"bad_input_lines": plan.bad_records, "repeated_input_ids": plan.repeated_ids,
                     "bad_rows": verdicts.bad_rows, "repeated_rows": verdicts.repeated_rows,
                     "ids_not_in_input": plan.unknown_ids, "representative_not_kept_in_input": plan.foreign_reps},
        "losing_removals": [dict(r.row(), excerpt=r.excerpt) if r.excerpt else r.row() for r in tally.losing],
        "unjustified_removals": [dict(r.row(), excerpt_vs_representative=r.excerpt_vs_rep)
                                 if r.excerpt_vs_rep else r.row() for r in tally.unjustified],
        "seconds": {name: round(value, 2) for name, value in timing.items()},
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} %"


def table(f: dict[str, Any], show: int) -> str:
    lose, unjust = f["lose_text"], f["unjustified"]
    out = [
        f"judge: {f['input']}  vs  {f['clusters'] or f['kept_file']}",
        f"  documents                {f['documents']:>12,}",
        f"  kept                     {f['kept']:>12,}",
        f"  removed                  {f['removed']:>12,}"
        + (f"   (of which not listed in CLUSTERS: {f['removed_not_in_clusters']:,})" if f["clusters"] else ""),
        f"  removals losing text     {lose['count']:>12,}   {_pct(lose['percent_of_removals'])} of removals"
        f"   (share of words in no kept 5-gram > {LOSE_TEXT_OVER})",
        "  unjustified removals     " + ("         n/a" if unjust["count"] is None else f"{unjust['count']:>12,}")
        + "   (representative holds < 1/3 of its 5-grams and 5-gram Jaccard < 0.5)",
        f"  removed words gone       {_pct(f['removed_words_gone_percent']):>12}   "
        f"({f['removed_words_gone']:,} of {f['removed_words']:,} words in no 5-gram of any kept document)",
        f"  pairwise words gone      {_pct(f['pairwise_words_gone_percent']):>12}   "
        f"(words in no 5-gram of their own representative)",
    ]
    problems = {name: n for name, n in f["problems"].items() if n}
    if problems:
        out.append("  problems: " + ", ".join(f"{name} {n:,}" for name, n in problems.items()))
    out += listing(f"first {show} removals losing text", f["losing_removals"][:show], "excerpt")
    out += listing(f"first {show} unjustified removals", f["unjustified_removals"][:show], "excerpt_vs_representative")
    seconds = ", ".join(f"{name} {value:.1f} s" for name, value in f["seconds"].items())
    out.append(f"time: {seconds}; peak memory {f['peak_memory_mb']:,.0f} MB (ru_maxrss)")
    return "\n".join(out)


def listing(title: str, rows: list[dict[str, Any]], excerpt_field: str) -> list[str]:
    if not rows:
        return []
    out = ["", title, f"  {'id':<22} {'representative':<22} {'kind':<15} {'words':>6} {'gone':>6} {'vs rep':>6} "
           f"{'held':>5} {'J':>5}  lost words"]
    for r in rows:
        held, jac = r["held_by_representative"], r["jaccard"]
        out.append(f"  {r['id']:<22} {r['representative'] or '-':<22} {r['kind'] or '-':<15} {r['words']:>6} "
                   f"{r['share_gone']:>6.2f} {r['share_gone_vs_representative']:>6.2f} "
                   f"{'-' if held is None else f'{held:.2f}':>5} {'-' if jac is None else f'{jac:.2f}':>5}  "
                   f"{r.get(excerpt_field, '')}")
    return out


# -- command ---------------------------------------------------------------------------------------


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring.")
    parser.add_argument("input", type=Path, help="the corpus, JSON Lines (.gz too)")
    parser.add_argument("clusters", type=Path, nargs="?", help="the run's CLUSTERS, JSON Lines, one row per document")
    parser.add_argument("--kept", type=Path, help="instead of CLUSTERS: the kept records (JSON Lines), by id")
    parser.add_argument("--id-field", default="id", help="id field of INPUT and KEPT (default: id)")
    parser.add_argument("--text-field", default="text", help="text field of INPUT: a string or a list (default: text)")
    parser.add_argument("--clusters-id-field", default="id", help="document id field of CLUSTERS (default: id)")
    parser.add_argument("--cluster-field", default="cluster", help="representative id field (default: cluster)")
    parser.add_argument("--representative-field", default="representative", help="kept flag (default: representative)")
    parser.add_argument("--kind-field", default="kind", help="label shown beside removals (default: kind)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every figure to FILE")
    parser.add_argument("--show", type=int, default=10, metavar="N", help="removals listed with excerpts (default 10)")
    args = parser.parse_args(argv)
    if (args.clusters is None) == (args.kept is None):
        parser.error("give CLUSTERS or --kept KEPT (one of them)")
    if args.show < 0:
        parser.error("--show must be >= 0")
    if args.json and not args.json.parent.is_dir():
        parser.error(f"--json: no folder {args.json.parent}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    timing: dict[str, float] = {}
    started = clock = time.perf_counter()
    verdicts = read_clusters(args.clusters, args) if args.clusters else read_kept(args.kept, args.id_field)
    plan = scan(args.input, verdicts, args)
    timing["scan"], clock = time.perf_counter() - clock, time.perf_counter()
    kept = index_kept(args.input, plan, args)
    timing["kept"], clock = time.perf_counter() - clock, time.perf_counter()
    tally = judge_removed(args.input, plan, verdicts, kept, args)
    timing["removed"] = time.perf_counter() - clock
    timing["total"] = time.perf_counter() - started
    return figures(args, verdicts, plan, tally, timing)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    try:
        result = run(args)
    except UsageError as error:
        print(f"judge: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(table(result, args.show))
    if args.json:
        try:
            args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        except OSError as error:
            print(f"judge: cannot write {args.json}: {error}", file=sys.stderr)
            return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
