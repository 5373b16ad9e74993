"""Invented corpora for dedup tests: stories, copies of known kinds, boilerplate and template notices,
and an oracle that measures pairs plainly (token tuples, no hashing) to check what dedup removes."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from neardup import Document
from neardup.text.normalize import normalize

SYLLABLES = ["ka", "lo", "mi", "ren", "sta", "vo", "dri", "pel", "nor", "tu", "bex", "qua", "fin", "gal", "ost",
             "ra", "sel", "tho", "um", "wix", "zen", "pra", "cul", "dem"]
FOOTER = "Copyright 2026 Invented Media Group. All rights reserved. This material may not be republished."


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))


def paragraph(rng: random.Random, low: int = 8, high: int = 40) -> str:
    text = " ".join(word(rng) for _ in range(rng.randint(low, high)))
    return text[0].upper() + text[1:] + "."


@dataclass(frozen=True)
class Item:
    id: str
    paragraphs: tuple[str, ...]
    story: str
    kind: str
    date: str

    def document(self) -> Document:
        return Document.from_text(self.id, "\n".join(self.paragraphs), {"date": self.date})


def make_corpus(seed: int, stories: int = 4, footer_rate: float = 0.3) -> list[Item]:
    """Stories with copies of every kind, a footer on some pages, a footer-only page, notices."""
    rng = random.Random(seed)
    items: list[Item] = []
    day = 0

    def add(id: str, paragraphs: list[str], story: str, kind: str) -> None:
        nonlocal day
        day += 1
        # Notices carry no site footer: two short notices that differ in a name and a date and share
        # a long footer are near-duplicates until the corpus is large enough (df >= 10) to see the
        # footer as boilerplate.
        if kind != "notice" and rng.random() < footer_rate:
            paragraphs = paragraphs + [FOOTER]
        items.append(Item(id, tuple(paragraphs), story, kind, f"2026-01-{1 + day % 28:02d}T{day % 24:02d}:00:00"))

    for s in range(stories):
        body = [paragraph(rng, 4, 9)] + [paragraph(rng) for _ in range(rng.randint(3, 8))]
        story = f"s{s}"
        add(story, body, story, "original")
        for c, kind in enumerate(rng.sample(["full", "truncated", "extended", "flash", "dropped", "edited",
                                             "embedded", "exact"], rng.randint(2, 6))):
            copy = list(body)
            if kind == "full":
                copy = [f"By {word(rng).title()} {word(rng).title()}"] + copy + ["ALSO READ: " + word(rng)]
            elif kind == "truncated":
                copy = copy[: max(2, len(copy) * 2 // 3)]
            elif kind == "extended":
                copy = copy + [paragraph(rng) for _ in range(rng.randint(1, 3))]
            elif kind == "flash":
                copy = copy[:2]
            elif kind == "dropped" and len(copy) > 3:
                del copy[rng.randrange(1, len(copy))]
            elif kind == "edited":
                copy = [" ".join(w if rng.random() > 0.05 else word(rng) for w in p.split()) for p in copy]
            elif kind == "embedded":
                menus = [word(rng).title() for _ in range(rng.randint(3, 12))]
                copy = menus[: len(menus) // 2] + copy + menus[len(menus) // 2:]
            add(f"s{s}-{kind}-{c}", copy, story, kind)
    add("footer-only", [word(rng).title() + " contest", FOOTER], "footer-only", "boilerplate")
    for n in range(rng.randint(2, 4)):
        company = " ".join(word(rng).upper() for _ in range(2))
        add(f"notice-{n}", [f"{company} SETS QUARTERLY", "Qtly div 12 cts vs 12 cts prior", "Pay April 1",
                            f"Record March {n + 2}"], f"notice-{n}", "notice")
    rng.shuffle(items)
    return items


# -- the oracle: plain token tuples, no hashing, no neardup stage code ----------------------------------


@dataclass(frozen=True)
class Plain:
    """One document as the oracle sees it: per paragraph its tokens and its shingles (tuples)."""

    forms: tuple[str, ...]
    tokens: tuple[tuple[str, ...], ...]

    def shingles(self, k: int) -> list[list[tuple[str, ...]]]:
        out = []
        for toks in self.tokens:
            if not toks:
                out.append([])
            elif len(toks) < k:
                out.append([toks])
            else:
                out.append([toks[i:i + k] for i in range(len(toks) - k + 1)])
        return out


def plain(document: Document) -> Plain:
    forms = tuple(normalize(document.paragraph_text(i)) for i in range(len(document.paragraphs)))
    return Plain(forms, tuple(tuple(f.split()) for f in forms))


def same_form(a: Plain, b: Plain) -> bool:
    return [f for f in a.forms if f] == [f for f in b.forms if f]


def jaccard(a: Plain, b: Plain, k: int = 5) -> float:
    sa = {s for p in a.shingles(k) for s in p}
    sb = {s for p in b.shingles(k) for s in p}
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


def covered_words(a: Plain, b: Plain, k: int = 5) -> list[tuple[int, int]]:
    """Per paragraph of a: (words lying in a shingle that b holds, words)."""
    held = {s for p in b.shingles(k) for s in p}
    out = []
    for toks, shingles in zip(a.tokens, a.shingles(k)):
        marks = [False] * len(toks)
        for i, s in enumerate(shingles):
            if s in held:
                for t in range(i, i + len(s)):
                    marks[t] = True
        out.append((sum(marks), len(toks)))
    return out


def coverage(a: Plain, b: Plain, k: int = 5) -> float:
    """The smaller of the share of a's words that b covers and of a's distinct shingles b holds."""
    counts = covered_words(a, b, k)
    total = sum(n for _, n in counts)
    words = sum(c for c, _ in counts) / total if total else 0.0
    sa = {s for p in a.shingles(k) for s in p}
    sb = {s for p in b.shingles(k) for s in p}
    return min(words, len(sa & sb) / len(sa) if sa else 0.0)


def weights(documents: list[Plain], min_words: int = 6, min_df: int = 10, ratio: float = 4.0) -> list[list[float]]:
    """The boilerplate rule, written plainly: df by exact matching form, median of the others."""
    df = Counter(f for d in documents for f in set(d.forms))
    out = []
    for d in documents:
        freqs = [df[f] for f in d.forms]
        body = [len(t) >= min_words for t in d.tokens]
        row = []
        for i, f in enumerate(freqs):
            others = sorted(freqs[j] for j in range(len(freqs)) if body[j] and j != i)
            typical = 0.0
            if others:
                n = len(others)
                typical = (others[(n - 1) // 2] + others[n // 2]) / 2
            limit = max(min_df, ratio * typical)
            w = min(1.0, limit / max(f, 1)) ** 2
            row.append(w if body[i] or not any(body) else 0.0)
        out.append(row)
    return out


def containment(a: Plain, wa: list[float], b: Plain, k: int = 5) -> tuple[float, float]:
    """(share of a's words that b covers, each weighted by its paragraph; the weighted count covered)."""
    found = total = 0.0
    for w, (covered, words) in zip(wa, covered_words(a, b, k)):
        found += w * covered
        total += w * words
    return (found / total if total else 0.0), found


def holders(documents: list[Plain]) -> Counter[str]:
    """How many documents hold each matching form."""
    return Counter(f for d in documents for f in set(d.forms))


def furniture_by_spread(d: Plain, r: Plain, spread: Counter[str], k: int = 5, furniture_words: int = 10) -> list[bool]:
    """d's furniture while clustering: paragraphs of furniture_words words or more that more
    documents hold than hold any paragraph of d that r mostly covers (at least 1; a shorter
    paragraph counts as held by d alone)."""
    counts = covered_words(d, r, k)
    holders = [spread[f] if len(t) >= furniture_words else min(spread[f], 1) for f, t in zip(d.forms, d.tokens)]
    story = max([1] + [h for h, (c, n) in zip(holders, counts) if c > 0 and 2 * c >= n])
    return [h > story for h in holders]


def furniture_kept(d: Plain, kept_forms: set[str], furniture_words: int = 10) -> list[bool]:
    """d's furniture once the clusters are known: paragraphs of furniture_words words or more that
    a kept document holds."""
    return [f in kept_forms and len(t) >= furniture_words for f, t in zip(d.forms, d.tokens)]


def story_coverage(d: Plain, r: Plain, furniture: list[bool], k: int = 5) -> float:
    """d's coverage by r with the words and shingles r leaves uncovered in d's furniture left out."""
    counts = covered_words(d, r, k)
    held = {s for p in r.shingles(k) for s in p}
    mine = {s for p in d.shingles(k) for s in p}
    loose_words = sum(n - c for (c, n), f in zip(counts, furniture) if f)
    loose_shingles = sum(1 for p, f in zip(d.shingles(k), furniture) if f for s in p if s not in held)
    words = sum(n for _, n in counts)
    covered = sum(c for c, _ in counts)
    shared = len(mine & held)
    by_words = covered / (words - loose_words) if words - loose_words > 0 else 0.0
    distinct = max(len(mine) - loose_shingles, shared)
    return min(by_words, shared / distinct if distinct else 0.0)


def story_containment(d: Plain, wd: list[float], r: Plain, spread: Counter[str], story_words: int = 20,
                      k: int = 5) -> float:
    """d's containment in r with what r leaves out of d's furniture (by spread) and of d's
    additions (paragraphs no other document holds, lines shorter than story_words) left out."""
    furniture = furniture_by_spread(d, r, spread, k)
    found = total = loose = 0.0
    for w, (c, n), f, form in zip(wd, covered_words(d, r, k), furniture, d.forms):
        found += w * c
        total += w * n
        loose += w * (n - c) if f or spread[form] <= 1 or n < story_words else 0.0  # each paragraph once
    return found / (total - loose) if total - loose > 0 else 0.0


def orphans(d: Plain, r: Plain, furniture: list[bool], story_words: int, k: int = 5) -> int:
    """Words r leaves out of d's paragraphs of >= story_words words that are not furniture and
    that r holds less than half of."""
    return sum(n - c for (c, n), f in zip(covered_words(d, r, k), furniture)
               if not f and n >= story_words and 2 * c < n)


def holds(r: Plain, wr: list[float], d: Plain, wd: list[float], furniture: list[bool], *, threshold: float = 0.8,
          partial: float = 0.7, min_shared: float = 10.0, min_coverage: float = 0.75, min_held: float = 0.5,
          story_words: int = 20) -> bool:
    """Whether r holds d (d may be removed with r kept), by the rule of neardup.match.scores.holds,
    with ``furniture`` marking d's paragraphs that others hold."""
    if same_form(d, r):
        return True
    if (story_coverage(d, r, furniture) < min_coverage or coverage(d, r) < min_held
            or orphans(d, r, furniture, story_words)):
        return False
    inside, found = containment(d, wd, r)
    return jaccard(d, r) >= threshold or (inside >= partial and found >= min_shared)


#: A company's dividend notice: the amount of one quarter inside a long fixed blurb.
NOTICE = ("Northwind Harbour Holdings said its board of directors declared a regular quarterly cash dividend of "
          "{amount} cts per share on its common stock, payable to shareholders of record at the close of business "
          "next month, and confirmed that its dividend policy and its guidance for the full year are unchanged.")
ABOUT = ("Northwind Harbour Holdings operates container terminals, warehouses and short sea shipping routes "
         "along the northern coast, employs staff in eleven ports and is listed on the regional exchange, "
         "where its shares are part of the main index of transport and logistics companies.")
#: A city's weather notice: the same words every day, other figures.
WEATHER = ("The weather service said temperatures in Port Aldine will reach {high}C on Tuesday, with winds from "
           "the west easing through the afternoon and a chance of light rain along the coast in the evening, "
           "before a dry and mostly sunny day on Wednesday across the whole region.")
OUTLOOK = ("Residents are reminded that the harbour ferries run to their winter timetable, that the coastal path "
           "remains closed between the lighthouse and the old pier for repairs, and that updates are posted "
           "at the harbour office every morning.")


def figure_notices(rng: random.Random, count: int = 12) -> list[Document]:
    """``count`` dividend notices of one company and ``count`` weather notices of one city, each
    with another figure (their words are the same), then an exact re-send of the first of each."""
    documents = []
    amounts = rng.sample(range(100, 999), count)
    highs = rng.sample(range(-20, 40), count)
    for k in range(count):
        dividend = NOTICE.format(amount=f"{amounts[k] // 10}.{amounts[k] % 10}")
        documents.append(Document.from_text(f"dividend-{k:02d}",
                                            f"NORTHWIND HARBOUR DIVIDEND\n\n{dividend}\n\n{ABOUT}"))
        weather = WEATHER.format(high=highs[k])
        documents.append(Document.from_text(f"weather-{k:02d}", f"PORT ALDINE WEATHER\n\n{weather}\n\n{OUTLOOK}"))
    documents += [Document.from_text(f"{d.id}-again", d.text) for d in documents[:2]]
    return documents
