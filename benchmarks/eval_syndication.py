"""Recall and precision of `Index.query` on the labelled syndication development set.

Reads ../shared/data/syndication-dev.jsonl and its truth file (not shipped with
neardup: the texts belong to their publishers). Indexes every document, queries
with every original, and counts, per kind of copy, how many copies of that
original come back (recall), and how many returned documents are copies of the
story queried (precision).

    python benchmarks/eval_syndication.py [--shingle-size N] [--threshold J] [--min-containment C]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from neardup import Config, Document, Index
from neardup.sketch.fingerprint import fingerprint

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--shingle-size", type=int)
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--min-containment", type=float)
    parser.add_argument("--paragraph-lsh-threshold", type=float)
    parser.add_argument("--article-lsh-threshold", type=float)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    corpus, truth_path = args.data / "syndication-dev.jsonl", args.data / "syndication-dev.truth.jsonl"
    if not corpus.exists():
        print(f"missing {corpus}: this evaluation needs the shared development data", file=sys.stderr)
        return 2
    docs, truth = load(corpus), {t["id"]: t for t in load(truth_path)}
    config = Config().with_options(shingle_size=args.shingle_size, threshold=args.threshold,
                                   min_containment=args.min_containment,
                                   paragraph_lsh_threshold=args.paragraph_lsh_threshold,
                                   article_lsh_threshold=args.article_lsh_threshold)
    documents = [Document.from_text(d["id"], d["text"]) for d in docs]
    start = time.perf_counter()
    index = Index(config)
    index.add(documents)
    built = time.perf_counter() - start
    originals = [d for d in documents if truth[d.id]["kind"] == "original"]
    start = time.perf_counter()
    results = index.query_many(originals, exclude_self=True)
    queried = time.perf_counter() - start
    report(originals, results, truth, built, queried, len(documents), args.show_misses)
    report_unlabelled(originals, results, truth, {d.id: d for d in documents}, config)
    return 0


def report_unlabelled(originals, results, truth, by_id, config) -> None:
    """The BBC originals hold exact and near duplicates of each other (the same story filed
    twice, an updated version), which the labels count as different stories. A returned copy
    of another story whose *original* shares at least ``min_containment`` of its shingles with
    the queried original (exact sets) is a real copy the labels do not know about."""
    def shingles(id):
        return np.unique(fingerprint([by_id[id]], config, shingles=True).shingles)
    wrong, explained = 0, 0
    for query, matches in zip(originals, results):
        for m in matches:
            other = truth[m.id]["story"]
            if other == query.id:
                continue
            wrong += 1
            a, b = shingles(query.id), shingles(other)
            inter = len(np.intersect1d(a, b))
            if max(inter / max(len(a), 1), inter / max(len(b), 1)) >= config.min_containment:
                explained += 1
    returned = sum(len(m) for m in results)
    print(f"returned matches outside the labelled story: {wrong}; of these, {explained} copy an original that "
          f"itself shares >= {config.min_containment} of its shingles with the query (duplicates inside the "
          f"source data)")
    print(f"precision counting those as copies: {(returned - wrong + explained) / max(returned, 1):.4f}")


def report(originals, results, truth, built, queried, total, show_misses) -> None:
    copies_of: dict[str, list[str]] = {}
    for id, t in truth.items():
        if t["kind"] != "original":
            copies_of.setdefault(t["story"], []).append(id)
    found, expected = Counter(), Counter()
    returned, correct = 0, 0
    kinds_returned: Counter = Counter()
    for query, matches in zip(originals, results):
        ids = {m.id for m in matches}
        returned += len(matches)
        correct += sum(truth[m.id]["story"] == query.id for m in matches)
        for m in matches:
            kinds_returned[(truth[m.id]["kind"], m.kind)] += 1
        for copy in copies_of.get(query.id, []):
            kind = truth[copy]["kind"]
            expected[kind] += 1
            found[kind] += copy in ids
            if show_misses and copy not in ids:
                print(f"missed {kind} copy {copy} of {query.id}")
    print(f"documents {total}, originals queried {len(originals)}; index {built:.2f}s, queries {queried:.2f}s")
    for kind in sorted(expected):
        print(f"recall {kind:10s} {found[kind] / expected[kind]:.4f}  ({found[kind]}/{expected[kind]})")
    all_found, all_expected = sum(found.values()), sum(expected.values())
    print(f"recall {'all':10s} {all_found / all_expected:.4f}  ({all_found}/{all_expected})")
    print(f"precision       {correct / max(returned, 1):.4f}  ({correct}/{returned} returned matches are copies)")
    print("returned (true kind, reported kind):", dict(sorted(kinds_returned.items())))


if __name__ == "__main__":
    sys.exit(main())
