r"""Benchmark corpora for dedup at scale: a *realistic* synthetic news corpus, and the old *stress* one.

What it is
----------
A JSON Lines corpus, one article a line: ``{"id", "text", "source", "date", "title"}`` (``id`` opaque
and deterministic, ``n0000123``; ``source`` the outlet; ``date`` an ISO datetime, UTC, increasing
with the id, ~2,000 articles a day from 2019-01-01, so a copy is always published after its
original), and a truth file, one line per article: ``{"id", "story", "kind", "original"}``:
``story`` is the original's id for a planted copy and the article's own id otherwise; ``kind`` is
``original``, ``notice`` (a template item, its own story) or the copy kind; ``original`` the
original's id for copies, null otherwise.

Two profiles:

* ``realistic`` (this module): new text written by word Markov chains trained per style on the real
  corpora, laid out by invented outlets with their own furniture, ~10% planted copies of nine known
  kinds and ~3% template notices. Unrelated articles share word 5-grams about as rarely as unrelated
  real articles do (measured below), so the candidates an index finds are the planted copies, the
  outlets' boilerplate and the notices, as in a real feed.
* ``stress``: the generator of ``bench_index.py`` (``Generator``, ``make_plan``, imported, not
  copied): real paragraphs (30% of words replaced) reused ~100 times in unrelated articles, copies of
  kinds byline/truncated/dropped; every article has ~1,000 paragraph-sharing candidates, a stress
  case no real corpus reaches. Written in the same record and truth format.

How the realistic corpus is made
--------------------------------
Training text (read from ``../shared/data``, or ``--data``, only read: nothing of it is written
into the repository or the cache except as the chains' statistics; exit code 2 naming the missing
files when it is not there): ``bbc-news.jsonl`` (each line after the headline a paragraph),
``reuters21578.jsonl`` (hard-wrapped lines re-joined into paragraphs, a paragraph starting at an
indented line; the trailing "Reuter" dropped) and ``news-scrape-2019-06-01.jsonl`` (only lines of 12+
words ending a sentence: the furniture is left out). Only running text is kept (8+ words, 80% with
letters, not a table in capitals). Three styles: ``news`` (BBC), ``wire`` (Reuters), ``web``
(scraped pages plus BBC, the scrape alone being small): 102,658 distinct paragraphs (10,253 BBC,
86,250 Reuters, 6,155 scraped), 152,434 distinct tokens.

The chains (whitespace tokens, punctuation and case kept): an order-2 context (a, b) is kept only
where the training text has at least MIN_BRANCH = 2 distinct words after it; a chain uses its
order-2 context with probability MIX = 0.95 and otherwise (and wherever the context was not kept)
backs off to order 1; successors are weighted by count**ALPHA (ALPHA = 0.85, flatter than the
counts). A plain order-2 chain (every context kept, no mixing, raw counts) copies long runs of its
small training text: 36% of its word 5-grams, 7.9% of its 8-grams and 1.4% of its 12-grams are
found in the training text, 239 of 230,617 generated paragraphs were real paragraphs word for word,
and two unrelated articles share 5-grams far more often than real ones (below). All styles live in
one state space (states = kept order-2 contexts, then one order-1 state per style and word); each
state owns a slice of its observed successors, each repeated round(count**ALPHA) times, with the
state each leads to, so one step of many chains is a few array gathers: ``first[state] +
floor(u * count[state])``. ``sample_chains`` runs all the chains of a batch (10,000 articles,
~100,000 chains) together, step by step, as numpy arrays; a paragraph stops at the first sentence
end after its target length (or 25 words later, at most 80 words: then a full stop is added); the
text of the batch is one ``" ".join`` of the gathered token strings, split at separators.

Article shapes: a headline (a 5-11 word chain, trailing function words and punctuation dropped;
capitals for wire outlets), then 3-25 paragraphs (lognormal, median 8; mean 8.8) of 15-80 words
(mean 36.8); the mean article is 2.0 KB of text (real bbc-news: 2.26 KB). Twelve invented outlets:
four ``news`` (one paragraph a line, like BBC), three ``wire`` (datelines "CITY, Mon D (Outlet) -",
"(Reporting by ...; editing by ...)"; two of them, 12% of the articles, hard-wrap at ~65 characters
with paragraphs starting on an indented line, like Reuters), five ``web`` (scraped pages: blank
lines between paragraphs, "Published ..." lines, "Advertisement", "ALSO READ: <another recent
headline>", newsletter boxes, share lines, cookie notes). Bylines ("By NAME, Outlet") at a rate per
outlet; a copyright/"All rights reserved" footer on 2-5% of an outlet's pages. All furniture text is
written for this module (FOOTERS, NEWSLETTERS, COOKIES, SHARES, ...), none is real site text.

Template notices (``--notice-rate``, 3%): dividend notices ("COMPANY SETS QUARTERLY DIVIDEND / Qtly
div X cts vs Y cts prior / Pay DATE / Record DATE"), lottery results and weather lines: same wording,
different fields (invented company names, numbers, cities, dates). Same-template notices have 5-gram
Jaccard up to ~0.36 (containment up to ~0.5): they must not be merged, and the truth gives each its
own story.

Planted copies (``--copy-rate``, 10%), each of an original among the last 1,000 articles (WINDOW),
published later, by default at any outlet (``exact`` and ``extended``: the original's outlet), with
weights DEFAULT_WEIGHTS (``--kinds full=0.3,flash=0.2,...`` to change them):
``full`` (the whole story + byline, Published line, Advertisement, two ALSO READ lines, the
googletag ad call fused into a paragraph, a footer), ``truncated`` (first 40-80% of the paragraphs),
``extended`` (an update: the original plus 1-3 new paragraphs; "UPDATE 1-" headline on wire),
``embedded`` (inside a page of menus, cookie banner, related headlines, footer links), ``dropped``
(one or two paragraphs left out, never the first), ``merged`` (two adjacent paragraphs joined),
``light-edit`` (2-6 typos or replaced words across the paragraphs), ``flash`` (headline + first
paragraph only) and ``exact`` (a re-send: the same text). A copy's paragraphs are the original's
(dateline included), laid out by the copy's outlet (a wire story re-wrapped, or unwrapped, by
another outlet).

Determinism and streaming: batch b of 10,000 articles draws from ``numpy default_rng([seed, b])`` and
``random.Random(seed * 1000003 + b)`` and is always generated whole, so the same (seed, docs) gives
the same bytes, and a corpus of N articles is a byte prefix of one of M > N articles of the same
seed (checked: 100k vs 1M; two 1M runs give the same sha256). Memory is the chains (~50 MB) and one batch; the peak is the training.
``ensure_corpus`` caches corpora in ``--cache`` (default /tmp/neardup-corpora) under
``{profile}-{docs}-s{seed}-v{VERSION}`` (plus a digest of non-default options), written under a
temporary name and renamed when complete. VERSION changes whenever the output would.

Measured (``--measure``: the first 50,000 articles of seed 7 regenerated in memory, so that each
original's story -- headline and paragraphs without furniture -- is known besides its page;
random pairs of distinct articles, word 5-grams of lower-cased ``\w+`` tokens, J = Jaccard,
C = |A & B| / min(|A|, |B|)):

    | pairs | n | J mean | J p99 | J max | J >0.1 | C mean | C p99 | C max | C >0.1 |
    | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
    | generated originals, story (headline + paragraphs) | 2,000 | 0.0000 | 0.0000 | 0.0039 | 0.0000 | 0.0000 | 0.0000 | 0.0079 | 0.0000 |
    | generated originals, whole page (with furniture) | 2,000 | 0.0002 | 0.0050 | 0.0325 | 0.0000 | 0.0005 | 0.0146 | 0.0806 | 0.0000 |
    | generated originals, whole page, same outlet | 2,000 | 0.0004 | 0.0156 | 0.0843 | 0.0000 | 0.0011 | 0.0367 | 0.1618 | 0.0020 |
    | real bbc-news | 2,000 | 0.0000 | 0.0000 | 0.0037 | 0.0000 | 0.0000 | 0.0000 | 0.0091 | 0.0000 |
    | real reuters21578 | 2,000 | 0.0001 | 0.0000 | 0.0683 | 0.0000 | 0.0001 | 0.0000 | 0.1392 | 0.0005 |
    | real news-scrape-2019-06-01 | 2,000 | 0.0014 | 0.0151 | 1.0000 | 0.0025 | 0.0040 | 0.0629 | 1.0000 | 0.0055 |
    | notices, same template (distinct stories) | 1,000 | 0.0464 | 0.1852 | 0.3559 | 0.1410 | 0.0868 | 0.3158 | 0.5250 | 0.2680 |

    other articles sharing >= 1 / >= 5 word 5-grams with an article, among 2,225 random articles
    (the size of bbc-news):

    | articles | >= 1: mean | p99 | >= 5: mean | p99 |
    | --- | ---: | ---: | ---: | ---: |
    | generated originals, story | 10.6 | 64 | 0.04 | 1 |
    | generated originals, whole page | 32.7 | 189 | 16.23 | 150 |
    | real bbc-news | 16.7 | 94 | 0.83 | 8 |
    | real reuters21578 | 8.4 | 70 | 0.55 | 11 |

    generated story paragraphs identical to a real paragraph (as lower-cased words): 0 of 384,262
    share of generated word n-grams (2,000 stories) found in the training text: n=5 0.067, n=8 0.0016,
    n=12 0.0001

The story rows are the ones to compare with real articles: chance overlap of unrelated generated
stories is at the level of real bbc-news (max J 0.0039 vs 0.0037; fewer articles sharing 5+ grams,
as real bbc-news also holds genuinely related follow-ups). Whole pages share more, by design: the
outlets' boilerplate (cookie notes, share lines, newsletter boxes, bylines), as scraped pages do.
How the choice of the chains moves it (30,000 articles for the first two, 50,000 for the chosen):

    | chains (MIN_BRANCH, MIX, ALPHA) | story J p99 / max | others >= 1: mean / p99 | >= 5: mean / p99 | 5/8/12-grams in training | real paragraphs verbatim |
    | --- | ---: | ---: | ---: | ---: | ---: |
    | plain order 2 (1, 1.0, 1.0) | 0.0016 / 0.0115 | 40.6 / 137 | 5.48 / 56 | 0.364 / 0.079 / 0.014 | 239 of 230,617 |
    | (3, 0.85, 0.75) | 0.0000 / 0.0037 | 4.4 / 18 | 0.02 / 1 | 0.034 / 0.0005 / 0.0000 | 0 of 230,617 |
    | chosen (2, 0.95, 0.85) | 0.0000 / 0.0039 | 10.6 / 64 | 0.04 / 1 | 0.067 / 0.0016 / 0.0001 | 0 of 384,262 |
    | real bbc-news | 0.0000 / 0.0037 | 16.7 / 94 | 0.83 / 8 | | |

Generation speed, this machine (2 cores shared with other work; single process; training the chains
~10-12 s of it; MB = 10^6 bytes of JSONL):

    | docs | wall (time -v) | of which training | generation docs/s | generation MB/s | file bytes | peak RSS |
    | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
    | 100,000 | 21.5 s | 10.4 s | 9,120 | 20.1 | 219,865,824 | 465 MB |
    | 1,000,000 | 135.0 s | 11.6 s | 8,120 | 17.8 | 2,195,382,992 | 465 MB |

    A second 1M run gave the same bytes (same sha256 of corpus and truth) in 144.7 s (load ~1.5 from
    other work). 1M: 7,400 docs/s and 16.3 MB/s overall; 2,017 bytes of text per article, 8.8 paragraphs per
    story; kinds: original 869,944, notice 30,109, full 18,055, truncated 16,076, light-edit 12,046,
    dropped 10,048, embedded 9,976, extended 9,797, merged 8,114, exact 7,988, flash 7,847.

Use
---
    PYTHONPATH=src python benchmarks/corpus.py --docs 1000000 --out /tmp/c1m.jsonl [--truth T]
        [--seed 7] [--profile realistic|stress] [--data DIR] [--measure]
    PYTHONPATH=src python benchmarks/corpus.py --docs 100000      # into the cache, prints the paths

    from corpus import ensure_corpus, load_truth
    corpus_path, truth_path = ensure_corpus("realistic", 100_000, seed=7, data_dir=DATA,
                                            cache_dir="/tmp/neardup-corpora")
    truth = load_truth(truth_path)          # id -> {"id", "story", "kind", "original"}

``--out`` always generates (for timing); without it the cached corpus is used or made. Checks:
``PYTHONPATH=src python -m pytest benchmarks/test_corpus.py`` (same bytes on re-run, prefix, truth
consistency, exit code 2, cache reuse).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

VERSION = "1"
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CACHE = Path("/tmp/neardup-corpora")
REALISTIC_SOURCES = ("bbc-news.jsonl", "reuters21578.jsonl", "news-scrape-2019-06-01.jsonl")
STRESS_SOURCES = ("bbc-news.jsonl", "reuters21578.jsonl", "syndication-dev.jsonl")
PROFILES = ("realistic", "stress")

COPY_KINDS = ("full", "truncated", "extended", "embedded", "dropped", "merged", "light-edit", "flash", "exact")
DEFAULT_WEIGHTS = {"full": 0.18, "truncated": 0.16, "extended": 0.10, "embedded": 0.10, "dropped": 0.10,
                   "merged": 0.08, "light-edit": 0.12, "flash": 0.08, "exact": 0.08}
COPY_RATE, NOTICE_RATE, WINDOW, BATCH = 0.10, 0.03, 1000, 10_000
START = np.datetime64("2019-01-01T00:00:00", "s")
MEAN_GAP = 43.2          # seconds between articles on average: ~2,000 a day

# The chains: word order 2 only where the context is "branchy" (at least MIN_BRANCH distinct successors
# in the training text), used with probability MIX, else order 1; successors weighted by count**ALPHA.
MIN_BRANCH, MIX, ALPHA = 2, 0.95, 0.85
EXTRA_WORDS = 25         # a paragraph ends at the first sentence end after its target length, or this many words on
MAX_WORDS = 80           # ... and at most this many words


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def missing_data(data: Path, profile: str = "realistic") -> list[Path]:
    names = REALISTIC_SOURCES if profile == "realistic" else STRESS_SOURCES
    return [Path(data) / name for name in names if not (Path(data) / name).is_file()]


def require_data(data: Path, profile: str = "realistic") -> None:
    """Exit with code 2 and the names of the missing files unless the training data is there."""
    missing = missing_data(data, profile)
    if missing:
        print("the corpus generator reads the shared development data, which is not shipped with neardup;\n"
              "missing: " + ", ".join(str(p) for p in missing) + "\n(point --data at the folder holding them)",
              file=sys.stderr)
        sys.exit(2)


# -- training text ------------------------------------------------------------------------------------------

WORD = re.compile(r"\w+")
REUTER_TAIL = re.compile(r"\s*\b(?:REUTER|Reuter)\b\s*$")
INDENTED = re.compile(r"\n(?=[ \t])")
SENTENCE_END = re.compile(r"[.!?][\"'\u2019\u201d)]*$")


def prose(paragraph: str, min_words: int = 8) -> bool:
    """A paragraph of running text: enough words, mostly words with letters, not a table in capitals."""
    words = paragraph.split()
    if len(words) < min_words:
        return False
    alpha = sum(1 for w in words if any(c.isalpha() for c in w))
    caps = sum(1 for w in words if len(w) > 1 and w.isupper())
    return alpha >= 0.8 * len(words) and caps <= 0.3 * len(words)


def bbc_paragraphs(data: Path) -> list[str]:
    out = []
    for record in read_jsonl(data / "bbc-news.jsonl"):
        out += [" ".join(p.split()) for p in record["text"].split("\n")[1:] if prose(p)]
    return out


def reuters_paragraphs(data: Path) -> list[str]:
    """Reuters body text re-joined: a paragraph starts at an indented line, hard-wrapped lines joined."""
    out = []
    for record in read_jsonl(data / "reuters21578.jsonl"):
        body = record["text"].split("\n", 1)
        if len(body) < 2:
            continue
        for block in INDENTED.split(REUTER_TAIL.sub("", body[1])):
            paragraph = " ".join(block.split())
            if prose(paragraph):
                out.append(paragraph)
    return out


def scrape_paragraphs(data: Path) -> list[str]:
    """Running text of scraped pages: long lines that end a sentence (menus and furniture left out)."""
    out = []
    for record in read_jsonl(data / "news-scrape-2019-06-01.jsonl"):
        for line in record["text"].split("\n")[1:]:
            paragraph = " ".join(line.split())
            if prose(paragraph, 12) and SENTENCE_END.search(paragraph):
                out.append(paragraph)
    return out


def training_text(data: Path) -> dict[str, list[str]]:
    """Paragraphs per style: ``news`` (BBC), ``wire`` (Reuters), ``web`` (scraped pages plus BBC)."""
    bbc, wire, scrape = bbc_paragraphs(data), reuters_paragraphs(data), scrape_paragraphs(data)
    return {"news": bbc, "wire": wire, "web": scrape + bbc}


def real_paragraph_keys(data: Path) -> set[str]:
    """Every real paragraph, unfiltered (each line of bbc-news and the scraped pages, each indented block of
    Reuters re-joined), as lower-cased \\w+ words."""
    keys = set()
    for name in ("bbc-news.jsonl", "news-scrape-2019-06-01.jsonl"):
        for record in read_jsonl(data / name):
            keys.update(" ".join(WORD.findall(line.lower())) for line in record["text"].split("\n"))
    for record in read_jsonl(data / "reuters21578.jsonl"):
        keys.update(" ".join(WORD.findall(block.lower())) for block in INDENTED.split(record["text"]))
    keys.discard("")
    return keys


# -- the Markov model -----------------------------------------------------------------------------------------

STYLES = ("news", "wire", "web")
S, SEP = 0, 1            # token ids: paragraph start, paragraph separator (in assembled text)


@dataclass
class Model:
    """Word chains of all styles in one state space.

    States 0..R2-1 are order-2 contexts (style, a, b) kept as branchy; state R2 + style*V + b is the
    order-1 state of word b. Every state has a slice [first, first+count) of ``succ_word`` /
    ``succ_state``: its observed successors, each repeated round(count**ALPHA) times, so that a uniform
    draw from the slice is a weighted draw, and the state each leads to. ``backoff`` maps a state to the
    order-1 state of its last word."""

    vocab: np.ndarray          # object array of token strings
    final: np.ndarray          # bool per token: ends a sentence
    first: np.ndarray          # int64 per state
    count: np.ndarray          # int64 per state
    succ_word: np.ndarray      # int32
    succ_state: np.ndarray     # int32
    backoff: np.ndarray        # int32 per state
    start: np.ndarray          # int32 per style: the state (S, S)
    contexts: int

    def describe(self) -> str:
        return (f"{len(self.vocab):,} tokens, {self.contexts:,} order-2 contexts kept (>= {MIN_BRANCH} successors), "
                f"{len(self.succ_word):,} transition slots")


def build_model(text: dict[str, list[str]]) -> Model:
    from array import array

    vocab: dict[str, int] = {"<s>": S, "\n": SEP}
    ids, lengths = array("i"), []
    for style in STYLES:
        count = 0
        for paragraph in text[style]:
            words = paragraph.split()
            ids.extend((S, S))
            ids.extend([vocab.setdefault(w, len(vocab)) for w in words])
            count += len(words) + 2
        lengths.append(count)
    V = len(vocab)
    full = np.frombuffer(ids, np.int32).astype(np.int64)
    del ids
    st = np.repeat(np.arange(len(STYLES), dtype=np.int64), lengths)[2:]
    ok = full[2:] != S                      # a triple (a, b, c) inside one paragraph
    a, b, c, st = full[:-2][ok], full[1:-1][ok], full[2:][ok], st[ok]
    del full, ok
    key2 = (st * V + a) * V + b
    del a
    # order-2 contexts with at least MIN_BRANCH distinct successors
    ctx, distinct = np.unique(np.unique(key2 * V + c) // V, return_counts=True)
    kept = ctx[distinct >= MIN_BRANCH]
    del ctx, distinct
    R2 = len(kept)
    n_states = R2 + len(STYLES) * V

    def state_of(style: np.ndarray, prev: np.ndarray, word: np.ndarray) -> np.ndarray:
        """The state after ``prev word``: its order-2 context if kept, else the order-1 state of word."""
        key = (style * V + prev) * V + word
        pos = np.minimum(np.searchsorted(kept, key), R2 - 1)
        return np.where(kept[pos] == key, pos, R2 + style * V + word)

    def transitions(src: np.ndarray, word: np.ndarray, style: np.ndarray, prev: np.ndarray) -> tuple:
        """Distinct (state, successor) pairs, their slot counts and the states they lead to."""
        _, first_at, counts = np.unique(src * V + word, return_index=True, return_counts=True)
        src, word = src[first_at], word[first_at]
        nxt = state_of(style[first_at], prev[first_at], word)
        return src, word, nxt, np.maximum(1, np.rint(counts.astype(np.float64) ** ALPHA)).astype(np.int64)

    pos = np.minimum(np.searchsorted(kept, key2), R2 - 1)
    in2 = kept[pos] == key2
    del key2
    t2 = transitions(pos[in2], c[in2], st[in2], b[in2])
    del pos, in2
    t1 = transitions(R2 + st * V + b, c, st, b)
    del b, c, st
    src, word, nxt, reps = (np.concatenate([x, y]) for x, y in zip(t2, t1))
    del t1, t2
    order = np.argsort(src, kind="stable")     # order-2 states come first already; keep it explicit
    src, word, nxt, reps = src[order], word[order], nxt[order], reps[order]
    succ_word = np.repeat(word.astype(np.int32), reps)
    succ_state = np.repeat(nxt.astype(np.int32), reps)
    slots_of = np.bincount(src, weights=reps, minlength=n_states).astype(np.int64)
    del src, word, nxt, reps, order
    first = np.concatenate([[0], np.cumsum(slots_of)[:-1]])
    # the order-1 fallback of each state; dead ends (words only seen at a paragraph's end) start a sentence
    backoff = np.empty(n_states, np.int64)
    backoff[:R2] = R2 + (kept // (V * V)) * V + kept % V
    backoff[R2:] = np.arange(R2, n_states)
    start = state_of(np.arange(len(STYLES)), np.full(len(STYLES), S), np.full(len(STYLES), S))
    dead = np.flatnonzero(slots_of == 0)
    owner = np.maximum(dead - R2, 0) // V
    first[dead] = first[start[owner]]
    slots_of[dead] = slots_of[start[owner]]
    tokens = np.empty(V, object)
    tokens[:] = list(vocab)
    final = np.array([bool(SENTENCE_END.search(t)) for t in vocab])
    final[:2] = False
    return Model(tokens, final, first, slots_of, succ_word, succ_state, backoff.astype(np.int32),
                 start.astype(np.int32), R2)


def sample_chains(model: Model, style: np.ndarray, target: np.ndarray, hard: np.ndarray,
                  rng: np.random.Generator) -> list[str]:
    """One text per chain, all chains sampled together step by step (numpy arrays, no per-word Python).

    A chain stops at ``target`` words when ``hard``, else at the first sentence end at or after
    ``target`` words, or EXTRA_WORDS words later, or at MAX_WORDS (then a full stop is added)."""
    n = len(style)
    if n == 0:
        return []
    cap = np.where(hard, target, np.minimum(target + EXTRA_WORDS, MAX_WORDS))
    width = int(cap.max()) + 1
    out = np.full((n, width), SEP, np.int32)
    length = np.zeros(n, np.int64)
    active = np.arange(n)
    state = model.start[style].astype(np.int64)
    step = 0
    while active.size:
        if MIX < 1:
            state = np.where(rng.random(active.size) < MIX, state, model.backoff[state])
        slot = model.first[state] + (rng.random(active.size) * model.count[state]).astype(np.int64)
        word = model.succ_word[slot]
        state = model.succ_state[slot].astype(np.int64)
        out[active, step] = word
        step += 1
        done = ((step >= target[active]) & (hard[active] | model.final[word])) | (step >= cap[active])
        length[active[done]] = step
        active, state = active[~done], state[~done]
    forced = ~hard & ~model.final[out[np.arange(n), length - 1]]
    flat = out[np.arange(width)[None, :] <= length[:, None]]
    text = (" ".join(model.vocab[flat].tolist()) + " ").split(" \n ")
    text.pop()
    for i in np.flatnonzero(forced).tolist():
        text[i] = text[i].rstrip(",;:-\u2014") + "."
    return text


# -- outlets and furniture (all text invented for this generator) ---------------------------------------------


@dataclass(frozen=True)
class Outlet:
    name: str
    style: str               # news: one paragraph a line; wire: agency copy; web: scraped page, blank lines
    weight: float
    wrapped: bool = False    # hard-wrapped at ~65 characters, paragraphs start with an indented line
    byline: float = 0.3
    footer: float = 0.03
    domain: str = ""


OUTLETS = (
    Outlet("Northgate Chronicle", "news", 0.09, byline=0.2, domain="northgatechronicle.example"),
    Outlet("Westmoor Evening Post", "news", 0.09, byline=0.5, domain="westmoorpost.example"),
    Outlet("Calder Valley Radio", "news", 0.08, byline=0.1, domain="caldervalleyradio.example"),
    Outlet("Ashby Courier", "news", 0.09, byline=0.6, domain="ashbycourier.example"),
    Outlet("Meridian Wire", "wire", 0.07, wrapped=True, byline=0.3, domain="meridianwire.example"),
    Outlet("Continental News Service", "wire", 0.05, wrapped=True, byline=0.2, domain="cns-wire.example"),
    Outlet("Harbourline Business", "wire", 0.08, byline=0.4, domain="harbourline.example"),
    Outlet("Riverbend Today", "web", 0.10, byline=0.7, footer=0.04, domain="riverbendtoday.example"),
    Outlet("Kestrel Valley Online", "web", 0.09, byline=0.6, footer=0.05, domain="kestrelvalley.example"),
    Outlet("Quillfeed", "web", 0.09, byline=0.8, footer=0.02, domain="quillfeed.example"),
    Outlet("The Copper Lantern", "web", 0.08, byline=0.5, footer=0.03, domain="copperlantern.example"),
    Outlet("Northwind Local", "web", 0.09, byline=0.6, footer=0.04, domain="northwindlocal.example"),
)
OUTLET_WEIGHTS = np.array([o.weight for o in OUTLETS]) / sum(o.weight for o in OUTLETS)
STYLE_INDEX = np.array([STYLES.index(o.style) for o in OUTLETS])

FIRST = ("Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jon", "Karin", "Luis",
         "Maya", "Nikhil", "Olga", "Pavel", "Quentin", "Rosa", "Sami", "Tess", "Umar", "Vera", "Wes", "Yara")
LAST = ("Adams", "Baker", "Chen", "Duarte", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jones", "Kowalski",
        "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn", "Rahman", "Silva", "Tan", "Ueda",
        "Varga", "Whitlock", "Yilmaz")
CITIES = ("London", "New York", "Frankfurt", "Tokyo", "Chicago", "Sydney", "Paris", "Toronto", "Brussels",
          "Singapore", "Madrid", "Washington", "Hong Kong", "Zurich", "Johannesburg", "Mumbai", "Oslo", "Dublin")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
MON = ("Jan", "Feb", "March", "April", "May", "June", "July", "Aug", "Sept", "Oct", "Nov", "Dec")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SECTIONS = ("Home", "News", "Local", "Business", "Sport", "Opinion", "Culture", "Weather", "Travel", "Podcasts",
            "Jobs", "Contact us", "Subscribe")
AD_CALL = "googletag.cmd.push(function() { googletag.display('div-gpt-ad-%d'); });"

FOOTERS = (
    "\u00a9 {year} {name}. All rights reserved.",
    "Copyright {year} {name} Media Ltd. All rights reserved. No part of this article may be reproduced "
    "without written permission.",
    "\u00a9 {name} {year} | Terms of use | Privacy notice | All rights reserved",
)
NEWSLETTERS = (
    "Sign up for the {name} morning briefing: the day's top stories in your inbox before breakfast.",
    "NEWSLETTER: Get the best of {name} every weekday. Enter your email address to subscribe.",
    "Like this story? The {name} evening digest rounds up the news that matters. Sign up free.",
)
COOKIES = (
    "{name} uses cookies to personalise content and to measure traffic. By continuing to use this site you "
    "agree to our use of cookies. Manage preferences",
    "We value your privacy. We and our partners store small files on your device to improve the site. "
    "Accept all | Settings",
    "This website uses cookies. Read our updated cookie notice to learn more. OK",
)
SHARES = ("Share this article: Facebook | Twitter | WhatsApp | Email", "Share | Tweet | Pin | Email",
          "Follow us on social media for the latest updates")

COMPANY_A = ("Amberly", "Brackenford", "Castellan", "Dunmore", "Elmstead", "Farrow", "Glenhaven", "Holloway",
             "Ivybridge", "Jasperton", "Kellerman", "Lockridge", "Marwood", "Norbury", "Oakhurst", "Pendleford",
             "Quarrington", "Redcliffe", "Stanmoor", "Thornbury", "Upwell", "Valemont", "Westerleigh", "Yarrow")
COMPANY_B = ("Industries Inc", "Holdings Corp", "Bancorp", "Mills Co", "Energy Corp", "Foods Inc",
             "Financial Corp", "Systems Inc", "Utilities Co", "Trust", "Instruments Inc", "Group Inc")
GAMES = ("Lucky Seven", "Daily Five", "Midweek Millions", "Golden Ball", "Thunder Pick", "Evening Three")
SKIES = ("sunny spells", "heavy showers", "overcast skies", "light rain clearing later", "patchy fog at first",
         "thunderstorms in the afternoon", "a mix of sun and cloud", "persistent drizzle", "clear skies")
WINDS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def person(rnd: random.Random) -> str:
    return f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"


class When(NamedTuple):
    """A publication time: the ISO string and the calendar fields the furniture needs."""
    iso: str
    year: int
    month: int      # 0-11
    day: int
    weekday: int    # 0 = Monday


def calendar(dates: np.ndarray) -> list[When]:
    """When of each datetime64[s], computed as arrays."""
    days = dates.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    year = months.astype(np.int64) // 12 + 1970
    month = months.astype(np.int64) % 12
    day = (days - months).astype(np.int64) + 1
    weekday = (days.astype(np.int64) + 3) % 7     # 1970-01-01 was a Thursday
    iso = np.char.add(np.datetime_as_string(dates, unit="s"), "Z")
    return [When(*row) for row in zip(iso.tolist(), year.tolist(), month.tolist(), day.tolist(), weekday.tolist())]


def notice(rnd: random.Random, when: When) -> tuple[str, list[str]]:
    """A template item: shares its wording with every item of its template, differs in the fields."""
    month, day, weekday = when.month, when.day, when.weekday
    kind = rnd.randrange(3)
    if kind == 0:
        company = f"{rnd.choice(COMPANY_A)} {rnd.choice(COMPANY_B)}"
        now = rnd.randrange(4, 90)
        before = max(1, now - rnd.choice((0, 0, 1, 2, 3, 5)))
        pay, record = rnd.randrange(1, 29), rnd.randrange(1, 29)
        m1, m2 = MON[(month + 1) % 12], MON[month]
        return f"{company.upper()} SETS QUARTERLY DIVIDEND", [
            f"Qtly div {now} cts vs {before} cts prior", f"Pay {m1} {pay}", f"Record {m2} {record}"]
    if kind == 1:
        game = rnd.choice(GAMES)
        balls = sorted(rnd.sample(range(1, 50), 6))
        bonus, millions, tenths = rnd.randrange(1, 50), rnd.randrange(1, 40), rnd.randrange(10)
        drawn = ", ".join(str(b) for b in balls[:-1]) + f" and {balls[-1]}"
        return f"{game} results for {WEEKDAYS[weekday]}, {MONTHS[month]} {day}", [
            f"The numbers drawn in {WEEKDAYS[weekday]} night's {game} draw were {drawn}. "
            f"The bonus number was {bonus}.",
            f"The estimated jackpot for the next {game} draw is {millions}.{tenths} million dollars."]
    city = rnd.choice(CITIES)
    high = rnd.randrange(-5, 35)
    sky = rnd.choice(SKIES)
    low, wind = high - rnd.randrange(3, 12), rnd.choice(WINDS)
    speed, rain = rnd.randrange(5, 45), rnd.randrange(0, 101, 10)
    return f"Weather for {city}: {sky}, high of {high}C", [
        f"{city} forecast for {WEEKDAYS[weekday]}: {sky}, with a high of {high}C and a low of {low}C. "
        f"Winds {wind} at {speed} km/h. Chance of rain {rain} per cent."]


# -- rendering ---------------------------------------------------------------------------------------------------

WRAP = re.compile(r"(.{1,65})(?: +|$)")


def wrap(paragraph: str, indent: bool) -> str:
    lines = WRAP.sub("\\1\n", paragraph).rstrip("\n")
    return ("    " + lines) if indent else lines


def render(outlet: Outlet, lines: list[str], body_from: int) -> str:
    """The page text: lines[0] the headline, lines[body_from:] paragraphs (furniture lines are kept as is)."""
    if outlet.wrapped:
        out = lines[:body_from]
        out += [wrap(p, i > 0) for i, p in enumerate(lines[body_from:])]
        return "\n".join(out)
    return ("\n\n" if outlet.style == "web" else "\n").join(lines)


DANGLING = frozenset(["a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "is", "its", "of",
                      "on", "or", "than", "that", "the", "to", "was", "were", "with"])


def title_of(words: str, style: str) -> str:
    """A headline from a chain of 5-11 words: no dangling function word or punctuation at its end."""
    parts = words.split()
    while len(parts) > 3 and parts[-1].lower().strip(".,;:!?\"'") in DANGLING:
        parts.pop()
    title = " ".join(parts).rstrip(".,;:!?\"'\u2019\u201d)-").lstrip("\"'\u2018\u201c(")
    title = title.replace('"', "") or "News in brief"
    return title.upper() if style == "wire" else title[:1].upper() + title[1:]


@dataclass
class Story:
    """An original: what copies are made of."""
    number: int
    outlet: int
    title: str
    paragraphs: list[str]
    text: str


class Realistic:
    """Streams (record, truth) pairs of the realistic profile, BATCH articles at a time."""

    def __init__(self, model: Model, docs: int, seed: int, copy_rate: float = COPY_RATE,
                 notice_rate: float = NOTICE_RATE, weights: dict[str, float] | None = None,
                 stories: list[Story] | None = None) -> None:
        self.model, self.docs, self.seed, self.stories = model, docs, seed, stories
        self.copy_rate, self.notice_rate = copy_rate, notice_rate
        weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        self.kind_p = np.array([weights.get(k, 0.0) for k in COPY_KINDS], float)
        self.kind_p /= self.kind_p.sum()
        self.recent: dict[int, Story] = {}
        self.order: deque[int] = deque()
        self.clock = 0.0

    # plan and text of one batch (always a full batch, so that a smaller corpus is a prefix of a larger one)
    def batch(self, b: int) -> Iterator[tuple[dict, dict]]:
        rng = np.random.default_rng([self.seed, b])
        rnd = random.Random(self.seed * 1_000_003 + b)
        n, base = BATCH, b * BATCH
        u = rng.random(n)
        role = np.where(u < self.notice_rate, 2, np.where(u < self.notice_rate + self.copy_rate, 1, 0))
        if b == 0:
            role[0] = 0
        outlet = rng.choice(len(OUTLETS), n, p=OUTLET_WEIGHTS)
        kind = rng.choice(len(COPY_KINDS), n, p=self.kind_p)
        gaps = 1 + np.floor(rng.exponential(MEAN_GAP, n))
        dates = calendar(START + (self.clock + np.cumsum(gaps)).astype("timedelta64[s]"))
        self.clock += float(gaps.sum())
        # originals: paragraphs per article (3-25, median 8) and words per paragraph before the sentence end
        # (15-60, median 22; 18 for wire copy; the sentence end adds ~10)
        paras = np.clip(np.rint(rng.lognormal(np.log(8.0), 0.45, n)), 3, 25).astype(np.int64)
        paras = np.where(role == 0, paras, 0)
        extra = np.where((role == 1) & (np.array(COPY_KINDS)[kind] == "extended"), rng.integers(1, 4, n), 0)
        # an extended copy's new paragraphs are drawn in the style of its planned outlet; copy() then takes an
        # original of that style and publishes the update under the original's outlet
        heads = (role == 0).astype(np.int64)
        jobs = heads + paras + extra
        owner = np.repeat(np.arange(n), jobs)
        offset = np.arange(len(owner)) - np.repeat(np.cumsum(jobs) - jobs, jobs)
        is_head = offset < np.repeat(heads, jobs)
        style = STYLE_INDEX[outlet][owner]
        wire = style == STYLES.index("wire")
        words = np.clip(np.rint(rng.lognormal(np.log(np.where(wire, 18.0, 22.0)), 0.45, len(owner))), 15, 60)
        target = np.where(is_head, rng.integers(5, 12, len(owner)), words).astype(np.int64)
        texts = sample_chains(self.model, style, target, is_head, rng)
        bounds = np.concatenate([[0], np.cumsum(jobs)])
        for i in range(n):
            number = base + i
            if number >= self.docs:
                return
            chunk = texts[bounds[i]:bounds[i + 1]]
            when = dates[i]
            if role[i] == 2:
                o = OUTLETS[int(outlet[i])]
                title, body = notice(rnd, when)
                yield self.record(number, o, title, render(o, [title] + body, 1), when), \
                    {"id": doc_id(number), "story": doc_id(number), "kind": "notice", "original": None}
            elif role[i] == 0:
                yield self.original(number, int(outlet[i]), chunk, when, rnd)
            else:
                yield self.copy(number, COPY_KINDS[int(kind[i])], int(outlet[i]), chunk, when, rnd)

    def records(self) -> Iterator[tuple[dict, dict]]:
        for b in range((self.docs + BATCH - 1) // BATCH):
            yield from self.batch(b)

    def record(self, number: int, outlet: Outlet, title: str, text: str, when: When) -> dict:
        return {"id": doc_id(number), "text": text, "source": outlet.name, "date": when.iso, "title": title}

    # originals -------------------------------------------------------------------------------------------------
    def original(self, number: int, o: int, chunk: list[str], when: When,
                 rnd: random.Random) -> tuple[dict, dict]:
        outlet = OUTLETS[o]
        title = title_of(chunk[0], outlet.style)
        paragraphs = chunk[1:]
        if outlet.style == "wire" or (outlet.style == "web" and rnd.random() < 0.15):
            paragraphs[0] = self.dateline(outlet, when, rnd) + paragraphs[0]
        lines, body_from = self.page(outlet, title, paragraphs, when, rnd)
        text = render(outlet, lines, body_from)
        story = Story(number, o, title, paragraphs, text)
        self.remember(story)
        if self.stories is not None:
            self.stories.append(story)
        return (self.record(number, outlet, title, text, when),
                {"id": doc_id(number), "story": doc_id(number), "kind": "original", "original": None})

    def dateline(self, outlet: Outlet, when: When, rnd: random.Random) -> str:
        month, day = when.month, when.day
        city = rnd.choice(CITIES).upper()
        if outlet.style == "wire":
            return f"{city}, {MON[month]} {day} ({outlet.name}) - "
        return f"{city} \u2014 "

    def page(self, outlet: Outlet, title: str, paragraphs: list[str], when: When,
             rnd: random.Random, full: bool = False) -> tuple[list[str], int]:
        """The outlet's furniture around a story: byline, time, ads, ALSO READ, newsletter, cookie note, footer."""
        head = [title]
        if full or rnd.random() < outlet.byline:
            head.append(f"By {person(rnd)}, {outlet.name}" if outlet.style != "wire" or full
                        else f"By {person(rnd)}")
        body = list(paragraphs)
        if outlet.style == "web" or full:
            if rnd.random() < 0.5:
                head.append(f"Published {MONTHS[when.month]} {when.day}, {when.year}")
            slots = list(range(1, len(body)))
            rnd.shuffle(slots)
            inserts = []
            if slots and (full or rnd.random() < 0.35):
                inserts.append((slots.pop(), "Advertisement"))
            if slots and (full or rnd.random() < 0.3):
                inserts.append((slots.pop(), "ALSO READ: " + self.other_title(rnd)))
            if full and slots:
                inserts.append((slots.pop(), "ALSO READ: " + self.other_title(rnd)))
            if slots and rnd.random() < 0.15:
                inserts.append((slots.pop(), rnd.choice(NEWSLETTERS).format(name=outlet.name)))
            for at, line in sorted(inserts, reverse=True):
                body.insert(at, line)
            if full:
                at = rnd.randrange(len(body))
                body[at] = body[at] + " " + AD_CALL % rnd.randrange(1, 9)
            if outlet.style == "web" and rnd.random() < 0.3:
                body.append(rnd.choice(SHARES))
            if outlet.style == "web" and rnd.random() < 0.25:
                body.append(rnd.choice(COOKIES).format(name=outlet.name))
        if outlet.style == "wire" and not outlet.wrapped and rnd.random() < 0.5:
            body.append(f"(Reporting by {person(rnd)}; editing by {person(rnd)})")
        if full or rnd.random() < outlet.footer:
            body.append(rnd.choice(FOOTERS).format(year=when.year, name=outlet.name))
        return head + body, len(head)

    def other_title(self, rnd: random.Random) -> str:
        if not self.order:
            return "More stories"
        return self.recent[self.order[rnd.randrange(len(self.order))]].title

    def remember(self, story: Story) -> None:
        self.recent[story.number] = story
        self.order.append(story.number)
        while self.order and self.order[0] < story.number - WINDOW:
            del self.recent[self.order.popleft()]

    # copies ------------------------------------------------------------------------------------------------------
    def copy(self, number: int, kind: str, o: int, chunk: list[str], when: When,
             rnd: random.Random) -> tuple[dict, dict]:
        if kind == "extended":   # an update: same outlet, and the new paragraphs were drawn in its style
            style = OUTLETS[o].style
            candidates = [k for k in self.order if OUTLETS[self.recent[k].outlet].style == style]
            source = self.recent[candidates[rnd.randrange(len(candidates))]] if candidates else None
        else:
            source = None
        if source is None:
            source = self.recent[self.order[rnd.randrange(len(self.order))]]
        paragraphs, title = list(source.paragraphs), source.title
        if kind in ("exact", "extended"):
            o = source.outlet
        outlet = OUTLETS[o]
        truth = {"id": doc_id(number), "story": doc_id(source.number), "kind": kind,
                 "original": doc_id(source.number)}
        if kind == "exact":
            return self.record(number, outlet, title, source.text, when), truth
        if kind == "truncated":
            keep = min(len(paragraphs) - 1, max(1, round(rnd.uniform(0.4, 0.8) * len(paragraphs))))
            paragraphs = paragraphs[:keep]
        elif kind == "extended":
            paragraphs = paragraphs + chunk
            if outlet.style == "wire":
                title = "UPDATE 1-" + title
        elif kind == "dropped":
            for _ in range(1 if len(paragraphs) < 5 or rnd.random() < 0.6 else 2):
                del paragraphs[rnd.randrange(1, len(paragraphs))]
        elif kind == "merged":
            at = rnd.randrange(len(paragraphs) - 1)
            paragraphs[at:at + 2] = [paragraphs[at] + " " + paragraphs[at + 1]]
        elif kind == "light-edit":
            paragraphs = light_edit(paragraphs, rnd)
        elif kind == "flash":
            paragraphs = paragraphs[:1]
        if kind == "embedded":
            lines, body_from = self.embedded(outlet, title, paragraphs, when, rnd)
        else:
            lines, body_from = self.page(outlet, title, paragraphs, when, rnd, full=kind == "full")
        return self.record(number, outlet, title, render(outlet, lines, body_from), when), truth

    def embedded(self, outlet: Outlet, title: str, paragraphs: list[str], when: When,
                 rnd: random.Random) -> tuple[list[str], int]:
        """The story inside a scraped page: menus, cookie banner, related links, footer links."""
        menu = " | ".join(rnd.sample(SECTIONS, rnd.randrange(6, 11)))
        top = [f"{title} | {outlet.name}", menu]
        if rnd.random() < 0.7:
            top.append(rnd.choice(COOKIES).format(name=outlet.name))
        top += [title, f"By {person(rnd)}"]
        related = [self.other_title(rnd) for _ in range(rnd.randrange(3, 7))]
        bottom = [rnd.choice(SHARES), rnd.choice(("Related stories", "More from " + outlet.name, "Most read"))]
        bottom += related + [" | ".join(rnd.sample(SECTIONS, 5)),
                             rnd.choice(FOOTERS).format(year=when.year, name=outlet.name)]
        return top + paragraphs + bottom, len(top)


def light_edit(paragraphs: list[str], rnd: random.Random) -> list[str]:
    """A few words changed across paragraphs: typos (swapped, dropped or doubled letters) and replaced words."""
    out = list(paragraphs)
    for _ in range(rnd.randrange(2, 7)):
        at = rnd.randrange(len(out))
        words = out[at].split(" ")
        w = rnd.randrange(len(words))
        word = words[w]
        how = rnd.randrange(4)
        if len(word) >= 4 and how == 0:
            i = rnd.randrange(1, len(word) - 2)
            word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        elif len(word) >= 4 and how == 1:
            i = rnd.randrange(1, len(word) - 1)
            word = word[:i] + word[i + 1:]
        elif how == 2:
            i = rnd.randrange(len(word))
            word = word[:i] + word[i] + word[i:]
        else:
            word = rnd.choice(("the", "a", "its", "this", "their", "new", "some", "major", "local", "recent"))
        words[w] = word
        out[at] = " ".join(words)
    return out


def doc_id(number: int) -> str:
    return f"n{number:07d}"


# -- the stress profile (the generator of bench_index.py, imported) -------------------------------------------


def stress_records(data: Path, docs: int, seed: int, copy_rate: float = COPY_RATE,
                   mutate: float = 0.3) -> Iterator[tuple[dict, dict]]:
    """bench_index.Generator: real paragraphs (mutated) reused in unrelated articles, planted copies
    (byline, truncated, dropped) of the last 1,000 articles; records in this module's format."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_index import KINDS, Generator, load_paragraphs, make_plan

    plan = make_plan(docs, copy_rate, seed)
    gaps = 1 + np.floor(np.random.default_rng(seed + 5).exponential(MEAN_GAP, docs))
    dates = START + np.cumsum(gaps).astype("timedelta64[s]")
    for number, text in Generator(load_paragraphs(data), plan, mutate, seed).articles():
        source = int(plan.source[number])
        title = text.split("\n", 1)[0]
        record = {"id": doc_id(number), "text": text, "source": "stress", "date": str(dates[number]) + "Z",
                  "title": title}
        if source >= 0:
            truth = {"id": doc_id(number), "story": doc_id(source), "kind": KINDS[plan.kind[number]],
                     "original": doc_id(source)}
        else:
            truth = {"id": doc_id(number), "story": doc_id(number), "kind": "original", "original": None}
        yield record, truth


# -- writing, caching, loading ----------------------------------------------------------------------------------


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``full=0.2,flash=0.1,...``: the kinds not named get 0."""
    if not text:
        return None
    weights = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name.strip() not in COPY_KINDS:
            raise SystemExit(f"unknown copy kind {name!r}; kinds: {', '.join(COPY_KINDS)}")
        weights[name.strip()] = float(value)
    return weights


def write_corpus(path: Path, truth_path: Path, profile: str, docs: int, seed: int, data: Path,
                 copy_rate: float = COPY_RATE, notice_rate: float = NOTICE_RATE,
                 weights: dict[str, float] | None = None, progress: bool = True,
                 model: Model | None = None) -> dict[str, Any]:
    """Generate and stream the corpus to ``path`` and its truth to ``truth_path``; returns counts and timings.

    ``model`` (realistic profile): chains already built from ``data`` by ``build_model``, to reuse."""
    require_data(data, profile)
    start = time.perf_counter()
    if profile == "realistic":
        model = model or build_model(training_text(data))
        trained = time.perf_counter() - start
        if progress:
            log(f"  model: {model.describe()} ({trained:.1f} s)")
        stream = Realistic(model, docs, seed, copy_rate, notice_rate, weights).records()
    elif profile == "stress":
        trained = 0.0
        stream = stress_records(data, docs, seed, copy_rate)
    else:
        raise ValueError(f"unknown profile {profile!r}")
    kinds: Counter[str] = Counter()
    size = 0
    last = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out, open(truth_path, "w", encoding="utf-8") as truth_out:
        lines, tlines = [], []
        for number, (record, truth) in enumerate(stream):
            lines.append(json.dumps(record, ensure_ascii=False))
            tlines.append(json.dumps(truth))
            kinds[truth["kind"]] += 1
            if len(lines) == 5000:
                block = "\n".join(lines) + "\n"
                out.write(block)
                truth_out.write("\n".join(tlines) + "\n")
                size += len(block.encode("utf-8"))
                lines, tlines = [], []
                if progress and time.perf_counter() - last > 30:
                    last = time.perf_counter()
                    log(f"  {number + 1:,} docs, {(number + 1) / (last - start - trained):,.0f} docs/s")
        if lines:
            block = "\n".join(lines) + "\n"
            out.write(block)
            truth_out.write("\n".join(tlines) + "\n")
            size += len(block.encode("utf-8"))
    seconds = time.perf_counter() - start
    return {"profile": profile, "docs": docs, "seed": seed, "file_bytes": size, "seconds": seconds,
            "train_seconds": trained, "kinds": dict(sorted(kinds.items()))}


def cache_key(profile: str, docs: int, seed: int, copy_rate: float = COPY_RATE, notice_rate: float = NOTICE_RATE,
              weights: dict[str, float] | None = None) -> str:
    key = f"{profile}-{docs}-s{seed}-v{VERSION}"
    options = (copy_rate, notice_rate, sorted((weights or DEFAULT_WEIGHTS).items()))
    if options != (COPY_RATE, NOTICE_RATE, sorted(DEFAULT_WEIGHTS.items())):
        key += "-" + hashlib.sha256(repr(options).encode()).hexdigest()[:10]
    return key


def ensure_corpus(profile: str = "realistic", docs: int = 100_000, seed: int = 7, data_dir: Path | str = DATA,
                  cache_dir: Path | str = CACHE, **options: Any) -> tuple[Path, Path]:
    """(corpus_path, truth_path) of the cached corpus for (profile, docs, seed, VERSION), generated if absent.

    The files are written under temporary names and renamed when complete, so an interrupted run leaves
    no half corpus behind to be reused."""
    cache = Path(cache_dir)
    key = cache_key(profile, docs, seed, **options)
    corpus, truth = cache / f"{key}.jsonl", cache / f"{key}.truth.jsonl"
    if corpus.is_file() and truth.is_file():
        return corpus, truth
    cache.mkdir(parents=True, exist_ok=True)
    tmp, ttmp = corpus.with_suffix(f".tmp{os.getpid()}"), truth.with_suffix(f".tmp{os.getpid()}")
    try:
        write_corpus(tmp, ttmp, profile, docs, seed, Path(data_dir), **options)
        os.replace(ttmp, truth)
        os.replace(tmp, corpus)
    finally:
        for leftover in (tmp, ttmp):
            if leftover.exists():
                leftover.unlink()
    return corpus, truth


def load_truth(path: Path | str) -> dict[str, dict]:
    """id -> truth record ({"id", "story", "kind", "original"})."""
    return {t["id"]: t for t in read_jsonl(Path(path))}


# -- measurement ---------------------------------------------------------------------------------------------------


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = WORD.findall(text.lower())
    return set(zip(*(words[i:] for i in range(n))))


def pair_stats(sets: list[set], pairs: list[tuple[int, int]]) -> dict[str, float]:
    jac, con = [], []
    for i, j in pairs:
        a, b = sets[i], sets[j]
        if not a or not b:
            continue
        inter = len(a & b)
        jac.append(inter / (len(a) + len(b) - inter))
        con.append(inter / min(len(a), len(b)))
    out = {}
    for name, values in (("J", jac), ("C", con)):
        v = np.array(values)
        out.update({f"{name} mean": v.mean(), f"{name} p99": np.quantile(v, 0.99), f"{name} max": v.max(),
                    f"{name} >0.1": (v > 0.1).mean()})
    out["pairs"] = len(jac)
    return out


def neighbours(sets: list[set], rnd: random.Random, size: int) -> dict[str, float]:
    """Among ``size`` random articles: how many others share at least 1 (and at least 5) word 5-grams
    with each (mean, p99), from the shared-gram counts X @ X.T of the article x 5-gram incidence matrix."""
    from scipy import sparse

    chosen = rnd.sample(range(len(sets)), min(size, len(sets)))
    ids: dict[tuple, int] = {}
    rows = np.repeat(np.arange(len(chosen)), [len(sets[i]) for i in chosen])
    cols = np.fromiter((ids.setdefault(g, len(ids)) for i in chosen for g in sorted(sets[i])), np.int64, len(rows))
    x = sparse.csr_matrix((np.ones(len(rows), np.int32), (rows, cols)), shape=(len(chosen), len(ids)))
    shared = (x @ x.T).toarray()
    np.fill_diagonal(shared, 0)
    one, five = (shared >= 1).sum(1), (shared >= 5).sum(1)
    return {"articles": len(chosen), ">=1 mean": one.mean(), ">=1 p99": np.quantile(one, 0.99),
            ">=5 mean": five.mean(), ">=5 p99": np.quantile(five, 0.99)}


def random_pairs(n: int, count: int, rng: random.Random, same: list[int] | None = None) -> list[tuple[int, int]]:
    pairs = []
    while len(pairs) < count:
        i, j = rng.randrange(n), rng.randrange(n)
        if i != j and (same is None or same[i] == same[j]):
            pairs.append((i, j))
    return pairs


def ngram_keys(words: Sequence[str], ids: dict[str, int], n: int) -> np.ndarray:
    t = np.fromiter((ids.setdefault(w, len(ids)) for w in words), np.uint64, len(words))
    if len(t) < n:
        return np.zeros(0, np.uint64)
    key = np.zeros(len(t) - n + 1, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            key = key * np.uint64(1_000_003) + t[k:len(t) - n + 1 + k]
    return key


def measure(data: Path, seed: int = 7, docs: int = 50_000, pairs: int = 2000, model: Model | None = None,
            **options: Any) -> dict[str, Any]:
    """Chance overlap of unrelated generated articles vs unrelated real ones, and verbatim reuse of real text.

    Generates the first ``docs`` articles of the realistic corpus of ``seed`` in memory (the same articles
    as the first ``docs`` of the file, a smaller corpus being a prefix of a larger one), so that the story of
    each original (headline and paragraphs, without the outlet's furniture) is known as well as its page."""
    rnd = random.Random(seed)
    model = model or build_model(training_text(data))
    stories: list[Story] = []
    records, kinds = [], []
    for record, truth in Realistic(model, docs, seed, stories=stories, **options).records():
        records.append(record)
        kinds.append(truth["kind"])
    originals = [r for r, k in zip(records, kinds) if k == "original"]
    notices = [r for r, k in zip(records, kinds) if k == "notice"]
    pages = [shingles(r["text"]) for r in originals]
    bodies = [shingles("\n".join([s.title] + s.paragraphs)) for s in stories]
    outlets = [r["source"] for r in originals]
    pick = random_pairs(len(pages), pairs, rnd)
    real = {name: [r["text"] for r in read_jsonl(data / f"{name}.jsonl")]
            for name in ("bbc-news", "reuters21578", "news-scrape-2019-06-01")}
    rows = {
        "generated originals, story (headline + paragraphs)": pair_stats(bodies, pick),
        "generated originals, whole page (with furniture)": pair_stats(pages, pick),
        "generated originals, whole page, same outlet": pair_stats(pages, random_pairs(len(pages), pairs, rnd,
                                                                                        outlets)),
    }
    for name, texts in real.items():
        rows[f"real {name}"] = pair_stats([shingles(t) for t in texts], random_pairs(len(texts), pairs, rnd))
    if len(notices) > 1:
        rows["notices, same template (distinct stories)"] = pair_stats(
            [shingles(r["text"]) for r in notices],
            random_pairs(len(notices), min(pairs, 1000), rnd, [template_of(r) for r in notices]))
    size = len(real["bbc-news"])
    near = {"generated originals, story": neighbours(bodies, rnd, size),
            "generated originals, whole page": neighbours(pages, rnd, size),
            "real bbc-news": neighbours([shingles(t) for t in real["bbc-news"]], rnd, size),
            "real reuters21578": neighbours([shingles(t) for t in real["reuters21578"]], rnd, size)}
    # real paragraphs reproduced verbatim; the share of generated word n-grams found in the training text
    keys = real_paragraph_keys(data)
    paragraphs = [p for s in stories for p in s.paragraphs]
    verbatim = sum(1 for p in paragraphs if " ".join(WORD.findall(p.lower())) in keys)
    train = [WORD.findall(p.lower()) for style in training_text(data).values() for p in style]
    sample = [WORD.findall(p.lower()) for s in rnd.sample(stories, min(2000, len(stories))) for p in s.paragraphs]
    found = {}
    for n in (5, 8, 12):
        ids: dict[str, int] = {}
        seen = np.unique(np.concatenate([ngram_keys(w, ids, n) for w in train]))
        grams = np.concatenate([ngram_keys(w, ids, n) for w in sample])
        found[n] = float(np.isin(grams, seen).mean())
    sizes = [len(r["text"].encode("utf-8")) for r in records]
    return {"rows": rows, "near": near, "docs": len(records), "originals": len(originals),
            "paragraphs": len(paragraphs),
            "verbatim": verbatim, "in_training": found, "mean_bytes": statistics.mean(sizes),
            "median_bytes": statistics.median(sizes),
            "paragraphs_per_story": statistics.mean(len(s.paragraphs) for s in stories),
            "words_per_paragraph": statistics.mean(len(p.split()) for p in paragraphs),
            "real_bbc_bytes": statistics.mean(len(t.encode("utf-8")) for t in real["bbc-news"])}


def template_of(record: dict) -> str:
    title = record["title"]
    return "dividend" if "DIVIDEND" in title else "weather" if title.startswith("Weather") else "lottery"


def print_measure(report: dict[str, Any]) -> None:
    cols = ("J mean", "J p99", "J max", "J >0.1", "C mean", "C p99", "C max", "C >0.1")
    print(f"word 5-gram Jaccard (J) and containment (C = |A&B| / min(|A|,|B|)) of random pairs of distinct "
          f"articles, lower-cased \\w+ tokens; generated: the first {report['docs']:,} articles")
    print("| pairs | n | " + " | ".join(cols) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in cols) + " |")
    for name, row in report["rows"].items():
        print(f"| {name} | {row['pairs']:,} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + " |")
    size = next(iter(report["near"].values()))["articles"]
    print(f"\nother articles sharing >= 1 / >= 5 word 5-grams with an article, among {size:,} random articles")
    print("| articles | >= 1: mean | p99 | >= 5: mean | p99 |\n| --- | ---: | ---: | ---: | ---: |")
    for name, row in report["near"].items():
        print(f"| {name} | {row['>=1 mean']:.1f} | {row['>=1 p99']:.0f} | {row['>=5 mean']:.2f} | "
              f"{row['>=5 p99']:.0f} |")
    print()
    print(f"generated story paragraphs identical to a real paragraph (as lower-cased words): "
          f"{report['verbatim']:,} of {report['paragraphs']:,}")
    print("share of generated word n-grams (2,000 stories) found anywhere in the training text: "
          + ", ".join(f"n={n}: {v:.4f}" for n, v in report["in_training"].items()))
    print(f"article text bytes: mean {report['mean_bytes']:,.0f}, median {report['median_bytes']:,.0f} "
          f"(real bbc-news: {report['real_bbc_bytes']:,.0f}); paragraphs per story "
          f"{report['paragraphs_per_story']:.1f}, words per paragraph {report['words_per_paragraph']:.1f}")


# -- command line ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="corpus JSONL to write (default: the cached corpus in --cache)")
    parser.add_argument("--truth", type=Path, help="truth JSONL (default: OUT with .truth.jsonl)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", choices=PROFILES, default="realistic")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the shared data (read only)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="cache folder, used when --out is not given")
    parser.add_argument("--copy-rate", type=float, default=COPY_RATE)
    parser.add_argument("--notice-rate", type=float, default=NOTICE_RATE)
    parser.add_argument("--kinds", help="copy kind weights, e.g. full=0.3,truncated=0.3,exact=0.4 (others 0)")
    parser.add_argument("--measure", action="store_true",
                        help="then print the similarity of unrelated generated vs real article pairs")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--measure-docs", type=int, default=50_000,
                        help="articles generated (in memory) for --measure")
    args = parser.parse_args(argv)
    require_data(args.data, args.profile)
    options = {"copy_rate": args.copy_rate, "notice_rate": args.notice_rate, "weights": parse_weights(args.kinds)}
    if args.profile == "stress":
        options = {"copy_rate": args.copy_rate}
    start = time.perf_counter()
    if args.out is None:
        corpus, truth = ensure_corpus(args.profile, args.docs, args.seed, args.data, args.cache, **options)
        print(json.dumps({"corpus": str(corpus), "truth": str(truth), "seconds": time.perf_counter() - start}))
    else:
        corpus = args.out
        truth = args.truth or args.out.with_name(args.out.name.removesuffix(".jsonl") + ".truth.jsonl")
        report = write_corpus(corpus, truth, args.profile, args.docs, args.seed, args.data, **options)
        mb = report["file_bytes"] / 1e6
        gen = report["seconds"] - report["train_seconds"]
        report.update({"corpus": str(corpus), "truth": str(truth), "docs_per_s": args.docs / gen,
                       "mb_per_s": mb / gen, "peak_rss_mb": peak_rss_mb()})
        print(json.dumps(report))
    if args.measure:
        if args.profile != "realistic":
            print("--measure is for the realistic profile", file=sys.stderr)
        else:
            print_measure(measure(args.data, args.seed, args.measure_docs, args.pairs, **options))
    return 0


def peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
