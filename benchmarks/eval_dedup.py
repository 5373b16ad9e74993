"""neardup's ``dedup`` against exact ground truth and against datasketch's MinHashLSH.

Reads ../shared/data (syndication-dev.jsonl + truth, reuters21578.jsonl, bbc-news.jsonl,
clough-stevenson.jsonl) and ../shared/score.py; nothing is copied into the repository, and
the script exits with status 2 when that folder is missing. Run from the repository root:

    PYTHONPATH=src python benchmarks/eval_dedup.py [--data DIR] [--only A,B,C] [--corpora reuters21578,bbc-news]

Takes about 2 minutes on 2 cores (Reuters dedup ~30-40 s, its exact truth ~15 s, datasketch ~20 s).

neardup runs with its default settings (``dedup(documents)``, ``Config()``). The baseline is
datasketch as its README shows it: ``MinHash(num_perm=128)`` updated with the document's set of
words (``text.split()``, UTF-8), ``MinHashLSH(threshold=T, num_perm=128)``, every document
inserted then queried; clusters are the connected components of the query results. T = 0.8, 0.5.

A. syndication-dev (labelled): each method's clusters are written as JSON Lines (id, cluster)
   to a temporary folder and scored by ../shared/score.py (pairwise precision, recall, F1, ARI,
   recall by kind of copy); wall time of each method; neardup's targets beside its figures.

B. Reuters-21578 and BBC News (unlabelled): ground truth is the EXACT Jaccard of every pair of
   documents over the shingle sets neardup matches on (word 5-shingles of the matching form:
   ``np.unique(shingle_paragraphs(normalize_many(paragraphs of Document.from_text(...)), 5).hashes)``),
   all pairs at once from ``X @ X.T`` of the binary document x shingle CSR matrix (row blocks,
   upper triangle), J = inter / (|A| + |B| - inter). Reported against the pairs with J >= 0.8:
   - dedup recall: both documents in one dedup cluster;
   - verified-match recall: ``Index.query`` of either document returns the other as ``exact``
     or ``near-duplicate`` (an in-memory ``Index()`` holding the whole corpus);
   - LSH candidate recall: the other document is among ``Index._candidates`` of either one
     (the article-band and paragraph-band look-ups, before any verification), cross-checked with
     ``Index.query(min_containment=0.0)``, which returns every verified candidate as at least
     ``partial``;
   - the pairs dedup clusters together with exact J < 0.8 (added through containment or through
     chains of links), how each is linked (``Index.compare``), and three examples;
   - datasketch at T = 0.8 and 0.5: recall of the same pairs (a query of one returns the other)
     and the number of extra pairs returned (J < 0.8), by band of exact J.

C. Clough & Stevenson: all 100 documents in one ``Index()``; every non-``orig`` answer is queried
   and compared (``Index.compare``) with its task's source. Per category: n, share whose source is
   returned, mean Jaccard, mean containment of the answer in the source; share matched by
   datasketch at T = 0.8 and 0.5 (the source is in the answer's LSH query result).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from neardup import Config, Document, Index
from neardup.pipeline.dedup import dedup
from neardup.sketch.fingerprint import fingerprint
from neardup.text.normalize import normalize_many
from neardup.text.shingles import shingle_paragraphs

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
THRESHOLDS = (0.8, 0.5)
NUM_PERM = 128
NEAR = 0.8  # Config().threshold: neardup's near-duplicate Jaccard
TARGETS_A = {"f1": 0.97, "precision": 0.99, "truncated": 0.95}
TARGET_CANDIDATE_RECALL = 0.99
EXAMPLES = 3


# ---------------------------------------------------------------- loading and timing

def load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def documents_of(records: list[dict[str, Any]]) -> list[Document]:
    return [Document.from_text(r["id"], r["text"], {k: v for k, v in r.items() if k not in ("id", "text")})
            for r in records]


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


# ---------------------------------------------------------------- the two methods

#: The configuration neardup runs with (defaults unless --set NAME=VALUE).
CONFIG = Config()


def neardup_clusters(documents: list[Document]) -> tuple[dict[str, str], list[Any], float]:
    """``dedup`` with the configuration: id -> cluster, the assignments, seconds."""
    with Timer() as timer:
        assignments = list(dedup(documents, config=CONFIG))
    return {a.id: a.cluster for a in assignments}, assignments, timer.seconds


def word_minhashes(records: list[dict[str, Any]]) -> tuple[list[Any], float]:
    """datasketch README style: one MinHash per document over its set of words."""
    from datasketch import MinHash

    with Timer() as timer:
        sketches = []
        for record in records:
            m = MinHash(num_perm=NUM_PERM)
            for word in set(record["text"].split()):
                m.update(word.encode("utf8"))
            sketches.append(m)
    return sketches, timer.seconds


def lsh_pairs(ids: list[str], sketches: list[Any], threshold: float) -> tuple[set[tuple[int, int]], float]:
    """Insert every document into ``MinHashLSH``, query every one: unordered pairs (i < j), seconds."""
    from datasketch import MinHashLSH

    position = {id: i for i, id in enumerate(ids)}
    with Timer() as timer:
        lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        for id, m in zip(ids, sketches):
            lsh.insert(id, m)
        pairs = set()
        for i, m in enumerate(sketches):
            for other in lsh.query(m):
                j = position[other]
                if j != i:
                    pairs.add((min(i, j), max(i, j)))
    return pairs, timer.seconds


def components(ids: list[str], pairs: Iterable[tuple[int, int]]) -> tuple[dict[str, str], float]:
    """Connected components of the pair graph: id -> cluster label, seconds."""
    with Timer() as timer:
        pairs = list(pairs)
        rows = np.array([p[0] for p in pairs], dtype=np.int64)
        cols = np.array([p[1] for p in pairs], dtype=np.int64)
        graph = sp.coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(len(ids), len(ids)))
        _, labels = connected_components(graph, directed=False)
        clusters = {id: f"c{label}" for id, label in zip(ids, labels.tolist())}
    return clusters, timer.seconds


def datasketch_runs(records: list[dict[str, Any]]) -> tuple[dict[float, set[tuple[int, int]]], dict[float, float]]:
    """LSH query pairs at every threshold, and each threshold's total seconds (MinHash included)."""
    ids = [r["id"] for r in records]
    sketches, minhash_seconds = word_minhashes(records)
    pairs, seconds = {}, {}
    for threshold in THRESHOLDS:
        pairs[threshold], lsh_seconds = lsh_pairs(ids, sketches, threshold)
        seconds[threshold] = minhash_seconds + lsh_seconds
    return pairs, seconds


# ---------------------------------------------------------------- A: labelled syndication set

def write_clusters(path: Path, clusters: dict[str, str]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for id, label in clusters.items():
            handle.write(json.dumps({"id": id, "cluster": label}) + "\n")


def score_clusters(score: Any, truth: Path, folder: Path, name: str, clusters: dict[str, str]) -> dict[str, Any]:
    path = folder / f"{name}.clusters.jsonl"
    write_clusters(path, clusters)
    return score(str(truth), str(path))


def import_score(data: Path) -> Any:
    sys.path.insert(0, str(data.parent))
    from score import score  # ../shared/score.py

    return score


def section_a(data: Path) -> None:
    print("=" * 100)
    print("A. syndication-dev: clusters scored by ../shared/score.py")
    records = load(data / "syndication-dev.jsonl")
    truth = data / "syndication-dev.truth.jsonl"
    score = import_score(data)
    documents = documents_of(records)
    results: list[tuple[str, dict[str, Any], float]] = []
    with tempfile.TemporaryDirectory(prefix="eval-dedup-") as tmp:
        clusters, _, seconds = neardup_clusters(documents)
        results.append(("neardup dedup (defaults)", score_clusters(score, truth, Path(tmp), "neardup", clusters),
                        seconds))
        ids = [r["id"] for r in records]
        pairs, lsh_seconds = datasketch_runs(records)
        for threshold in THRESHOLDS:
            labels, cc_seconds = components(ids, pairs[threshold])
            scores = score_clusters(score, truth, Path(tmp), f"datasketch-{threshold}", labels)
            results.append((f"datasketch MinHashLSH T={threshold}", scores, lsh_seconds[threshold] + cc_seconds))
    print(f"{len(records)} documents")
    kinds = sorted({k for _, s, _ in results for k in s["recall_by_kind"]})
    header = f"{'method':<34}{'prec':>8}{'recall':>8}{'F1':>8}{'ARI':>8}" + "".join(f"{k:>11}" for k in kinds)
    print(header + f"{'seconds':>9}")
    for name, s, seconds in results:
        print(f"{name:<34}{s['precision']:>8.4f}{s['recall']:>8.4f}{s['f1']:>8.4f}{s['ari']:>8.4f}"
              + "".join(f"{s['recall_by_kind'].get(k, float('nan')):>11.3f}" for k in kinds) + f"{seconds:>9.1f}")
    print("(recall by kind: share of copies of that kind in their original's cluster; datasketch seconds"
          " include the word MinHashes, computed once and shared by both thresholds)")
    mine = results[0][1]
    checks = [("F1", mine["f1"], TARGETS_A["f1"]), ("precision", mine["precision"], TARGETS_A["precision"]),
              ("truncated recall", mine["recall_by_kind"].get("truncated", 0.0), TARGETS_A["truncated"])]
    for label, value, target in checks:
        print(f"  neardup target {label} >= {target}: {value:.4f}  {'met' if value >= target else 'MISSED'}")


# ---------------------------------------------------------------- B: exact all-pairs Jaccard

def shingle_sets(documents: list[Document], size: int) -> list[np.ndarray]:
    """The distinct word shingles neardup matches on, per document."""
    sets = []
    for document in documents:
        paragraphs = normalize_many([document.text[s:e] for s, e in document.paragraphs])
        sets.append(np.unique(shingle_paragraphs(paragraphs, size).hashes))
    return sets


def incidence(sets: list[np.ndarray]) -> sp.csr_matrix:
    """Binary document x shingle matrix."""
    flat = np.concatenate(sets) if sets else np.zeros(0, np.uint32)
    _, columns = np.unique(flat, return_inverse=True)
    offsets = np.concatenate(([0], np.cumsum([len(s) for s in sets])))
    data = np.ones(len(flat), dtype=np.int32)
    return sp.csr_matrix((data, columns.ravel(), offsets), shape=(len(sets), int(columns.max(initial=-1)) + 1))


def exact_pairs(sets: list[np.ndarray], minimum: float, block: int = 500) -> dict[tuple[int, int], float]:
    """Every pair (i < j) whose exact Jaccard is at least ``minimum``, from X @ X.T by row blocks."""
    matrix = incidence(sets)
    sizes = np.array([len(s) for s in sets], dtype=np.int64)
    transposed = matrix.T.tocsc()
    found: dict[tuple[int, int], float] = {}
    for lo in range(0, matrix.shape[0], block):
        product = (matrix[lo:lo + block] @ transposed).tocoo()
        rows, cols, inter = product.row + lo, product.col, product.data.astype(np.int64)
        upper = cols > rows
        rows, cols, inter = rows[upper], cols[upper], inter[upper]
        jaccard = inter / (sizes[rows] + sizes[cols] - inter)
        keep = jaccard >= minimum
        found.update(zip(zip(rows[keep].tolist(), cols[keep].tolist()), jaccard[keep].tolist()))
    return found


def overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Exact Jaccard, share of a in b, share of b in a."""
    if len(a) == 0 or len(b) == 0:
        return 0.0, 0.0, 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter), inter / len(a), inter / len(b)


def clustered_pairs(ids: list[str], clusters: dict[str, str]) -> set[tuple[int, int]]:
    members: dict[str, list[int]] = defaultdict(list)
    for i, id in enumerate(ids):
        if id in clusters:
            members[clusters[id]].append(i)
    return {pair for group in members.values() for pair in combinations(sorted(group), 2)}


def query_evidence(index: Index, documents: list[Document], rows: list[int]) -> dict[str, dict[int, Any]]:
    """For the documents at ``rows``: LSH candidates (storage numbers), default matches, and
    ``min_containment=0`` matches, each keyed by row."""
    from neardup.match.boilerplate import paragraph_weights

    batch = [documents[r] for r in rows]
    config = index.config
    prints = fingerprint(batch, config)
    weights = paragraph_weights(index.storage.paragraph_frequencies(prints.paragraph_digests),
                                prints.paragraph_words, prints.doc_offsets, config)
    found_rows, found_numbers = index._candidates(prints, weights)
    candidates: dict[int, set[int]] = {}
    for k, n in zip(found_rows.tolist(), found_numbers.tolist()):
        candidates.setdefault(k, set()).add(n)
    default = index.query_many(batch)
    everything = index.query_many(batch, min_containment=0.0)
    return {"candidates": {r: candidates.get(k, set()) for k, r in enumerate(rows)},
            "default": {r: {m.id: m for m in default[k]} for k, r in enumerate(rows)},
            "all": {r: {m.id: m for m in everything[k]} for k, r in enumerate(rows)}}


def either(evidence: dict[int, Any], ids: list[str], i: int, j: int, test: Any) -> bool:
    return test(evidence.get(i), ids[j]) or test(evidence.get(j), ids[i])


def verified(matches: dict[str, Any] | None, other: str) -> bool:
    return bool(matches) and other in matches and matches[other].kind in ("exact", "near-duplicate")


def returned(matches: dict[str, Any] | None, other: str) -> bool:
    return bool(matches) and other in matches


def share(found: int, total: int) -> str:
    return f"{found}/{total} = {found / total:.4f}" if total else "0/0"


def section_b(data: Path, corpus: str) -> None:
    print("=" * 100)
    print(f"B. {corpus}: exact all-pairs Jaccard over neardup's shingle sets")
    records = load(data / f"{corpus}.jsonl")
    documents = documents_of(records)
    ids = [d.id for d in documents]
    config = CONFIG
    with Timer() as t_truth:
        sets = shingle_sets(documents, config.shingle_size)
        truth = exact_pairs(sets, NEAR)
    clusters, assignments, dedup_seconds = neardup_clusters(documents)
    with Timer() as t_index:
        index = Index(config)
        index.add(documents)
    involved = sorted({i for pair in truth for i in pair})
    with Timer() as t_query:
        evidence = query_evidence(index, documents, involved)
    number = {id: index.storage.number_of(id) for id in ids}
    largest = Counter(clusters.values()).most_common(1)[0][1] if clusters else 0
    print(f"{len(documents)} documents; {sum(1 for s in sets if len(s) == 0)} with no shingle; "
          f"dedup: {len(set(clusters.values()))} clusters, largest {largest}, {dedup_seconds:.1f}s; "
          f"exact truth {t_truth.seconds:.1f}s; in-memory Index add {t_index.seconds:.1f}s, "
          f"queries of the {len(involved)} documents in truth pairs {t_query.seconds:.1f}s")
    exact_same = sum(1 for i, j in truth if np.array_equal(sets[i], sets[j]))
    print(f"pairs with exact J >= {NEAR}: {len(truth)} ({exact_same} with identical shingle sets)")
    together = clustered_pairs(ids, clusters)
    n = len(truth)
    found_dedup = sum(1 for p in truth if p in together)
    found_verified = sum(1 for i, j in truth if either(evidence["default"], ids, i, j, verified))
    found_any = sum(1 for i, j in truth if either(evidence["default"], ids, i, j, returned))
    found_cand = sum(1 for i, j in truth if number[ids[j]] in evidence["candidates"][i]
                     or number[ids[i]] in evidence["candidates"][j])
    found_zero = sum(1 for i, j in truth if either(evidence["all"], ids, i, j, returned))
    print(f"  neardup dedup recall (same cluster):                      {share(found_dedup, n)}")
    print(f"  neardup Index.query recall (exact/near-duplicate, either): {share(found_verified, n)}")
    print(f"  neardup Index.query recall (any kind, either):            {share(found_any, n)}")
    print(f"  neardup LSH candidate recall (Index._candidates, either): {share(found_cand, n)}  "
          f"target >= {TARGET_CANDIDATE_RECALL}: "
          f"{'met' if n == 0 or found_cand / n >= TARGET_CANDIDATE_RECALL else 'MISSED'}")
    print(f"  cross-check, Index.query(min_containment=0.0) either:     {share(found_zero, n)}")
    report_largest(clusters, {d.id: d for d in documents})
    report_misses(truth, ids, sets, documents, together, evidence, number)
    report_additions(truth, together, ids, sets, documents, index, assignments)
    report_datasketch(records, truth, sets)


def report_misses(truth: dict[tuple[int, int], float], ids: list[str], sets: list[np.ndarray],
                  documents: list[Document], together: set[tuple[int, int]], evidence: dict[str, Any],
                  number: dict[str, int | None]) -> None:
    """Pairs with J >= 0.8 that dedup leaves apart, with what the index said about them."""
    missed = sorted((p for p in truth if p not in together), key=lambda p: truth[p])
    if not missed:
        return
    print(f"  J >= {NEAR} pairs dedup leaves apart: {len(missed)}; up to {EXAMPLES}:")
    for i, j in missed[:EXAMPLES]:
        candidate = number[ids[j]] in evidence["candidates"][i] or number[ids[i]] in evidence["candidates"][j]
        kinds = [m.kind for m in (evidence["default"][i].get(ids[j]), evidence["default"][j].get(ids[i])) if m]
        print(f"    {ids[i]} ~ {ids[j]}: J={truth[(i, j)]:.3f}, shingles {len(sets[i])}/{len(sets[j])}, "
              f"candidate={candidate}, query kinds={kinds or 'none'}")
        for k in (i, j):
            print(f"      {ids[k]}: {snippet(documents[k])!r}")


def report_largest(clusters: dict[str, str], by_id: dict[str, Document], count: int = 3) -> None:
    """The biggest dedup clusters, with two members each: chains of templates show up here."""
    members: dict[str, list[str]] = defaultdict(list)
    for id, key in clusters.items():
        members[key].append(id)
    sizes = Counter(len(group) for group in members.values() if len(group) > 1)
    print(f"  dedup cluster sizes (size: clusters): {dict(sorted(sizes.items()))}")
    for key, group in sorted(members.items(), key=lambda item: (-len(item[1]), item[0]))[:count]:
        if len(group) < 3:
            break
        print(f"    cluster {key} ({len(group)} documents), e.g.:")
        for id in group[:2]:
            print(f"      {id}: {snippet(by_id[id])!r}")


def snippet(document: Document) -> str:
    return " ".join(document.text.split())[:80]


def report_additions(truth: dict[tuple[int, int], float], together: set[tuple[int, int]], ids: list[str],
                     sets: list[np.ndarray], documents: list[Document], index: Index,
                     assignments: list[Any]) -> None:
    """Pairs dedup clusters together although their exact Jaccard is below 0.8, and how they are linked."""
    added = []
    for i, j in sorted(together - set(truth)):
        jaccard, i_in_j, j_in_i = overlap(sets[i], sets[j])
        added.append((i, j, jaccard, i_in_j, j_in_i))
    kind_of = {a.id: a.kind for a in assignments}
    how = Counter()
    direct: dict[tuple[int, int], Any] = {}
    for i, j, *_ in added:
        match = index.compare(ids[i], ids[j])
        direct[(i, j)] = match
        how[match.kind] += 1
    print(f"  pairs dedup clusters together with exact J < {NEAR}: {len(added)}; direct relation "
          f"(Index.compare): {dict(sorted(how.items()))}")
    print("    ('near-duplicate' here = both estimated containments >= 0.9; 'partial' = joined by"
          " partial containment >= 0.7; 'linked' = only through other documents)")
    if not added:
        return
    added.sort(key=lambda item: item[2])
    picks = sorted({0, len(added) // 2, len(added) - 1})[:EXAMPLES]
    print("    examples (lowest, median, highest J):")
    for k in picks:
        i, j, jaccard, i_in_j, j_in_i = added[k]
        m = direct[(i, j)]
        print(f"    {ids[i]} ~ {ids[j]}: J={jaccard:.3f}; exact containment {ids[i]} in {ids[j]} {i_in_j:.3f}, "
              f"{ids[j]} in {ids[i]} {j_in_i:.3f}; neardup compare: {m.kind}, est. {m.query_in_match:.3f} / "
              f"{m.match_in_query:.3f}; dedup kinds {kind_of.get(ids[i])}/{kind_of.get(ids[j])}")
        for d in (i, j):
            print(f"      {ids[d]}: {snippet(documents[d])!r}")


def report_datasketch(records: list[dict[str, Any]], truth: dict[tuple[int, int], float],
                      sets: list[np.ndarray]) -> None:
    pairs, seconds = datasketch_runs(records)
    bands = ((0.5, NEAR), (0.2, 0.5), (0.0, 0.2))
    for threshold in THRESHOLDS:
        found = pairs[threshold]
        recall = sum(1 for p in truth if p in found)
        extra = [p for p in found if p not in truth]
        jaccards = [overlap(sets[i], sets[j])[0] for i, j in extra]
        by_band = ", ".join(f"J in [{lo}, {hi}): {sum(1 for x in jaccards if lo <= x < hi)}" for lo, hi in bands)
        print(f"  datasketch T={threshold}: recall {share(recall, len(truth))}; {len(found)} pairs returned, "
              f"{len(extra)} extra (exact J < {NEAR}: {by_band}); {seconds[threshold]:.1f}s")


# ---------------------------------------------------------------- C: Clough & Stevenson

def section_c(data: Path) -> None:
    print("=" * 100)
    print("C. clough-stevenson: each answer against its task's source (answer in source)")
    records = load(data / "clough-stevenson.jsonl")
    documents = documents_of(records)
    source = {r["task"]: r["id"] for r in records if r["category"] == "orig"}
    answers = [(k, r) for k, r in enumerate(records) if r["category"] != "orig"]
    index = Index(CONFIG)
    index.add(documents)
    results = index.query_many([documents[k] for k, _ in answers])
    sets = shingle_sets(documents, index.config.shingle_size)
    ids = [r["id"] for r in records]
    position = {id: i for i, id in enumerate(ids)}
    per: dict[str, list[tuple[bool, str, float, float, float]]] = defaultdict(list)
    for (k, record), matches in zip(answers, results):
        target = source[record["task"]]
        hit = next((m for m in matches if m.id == target), None)
        relation = index.compare(record["id"], target)
        exact_in = overlap(sets[k], sets[position[target]])[1]
        per[record["category"]].append((hit is not None, hit.kind if hit else "-", relation.jaccard,
                                        relation.query_in_match, exact_in))
    pairs, _ = datasketch_runs(records)
    print(f"{'category':<10}{'n':>4}{'matched':>9}{'mean J':>9}{'mean cont':>11}{'(exact)':>9}  {'kinds':<44}"
          + "".join(f"{'ds T=' + str(t):>10}" for t in THRESHOLDS))
    for category in ("cut", "light", "heavy", "non"):
        rows = per.get(category, [])
        if not rows:
            continue
        members = [r for r in answers if r[1]["category"] == category]
        ds = [sum(1 for k, r in members
                  if tuple(sorted((k, position[source[r["task"]]]))) in pairs[t]) / len(members)
              for t in THRESHOLDS]
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(Counter(r[1] for r in rows).items()))
        print(f"{category:<10}{len(rows):>4}{np.mean([r[0] for r in rows]):>9.2f}{np.mean([r[2] for r in rows]):>9.3f}"
              f"{np.mean([r[3] for r in rows]):>11.3f}{np.mean([r[4] for r in rows]):>9.3f}  {kinds:<44}"
              + "".join(f"{x:>10.2f}" for x in ds))
    print("(matched: Index.query of the answer returns the source, any kind ('-': not returned); mean J and"
          " containment of the answer in the source from Index.compare (J exact, containment estimated from"
          " paragraph signatures), '(exact)' the same containment over the exact shingle sets, all means over"
          " every answer of the category; ds T: share whose source is in the answer's MinHashLSH query result)")


# ---------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (read only)")
    parser.add_argument("--only", default="A,B,C", help="sections to run, e.g. A,C")
    parser.add_argument("--corpora", default="reuters21578,bbc-news", help="section B corpora")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a Config field for neardup (repeatable), e.g. --set min_coverage=0.75")
    args = parser.parse_args()
    data = args.data.resolve()
    needed = ["syndication-dev.jsonl", "syndication-dev.truth.jsonl", "clough-stevenson.jsonl"] + \
        [f"{c}.jsonl" for c in args.corpora.split(",") if c]
    missing = [name for name in needed if not (data / name).exists()]
    if missing or not (data.parent / "score.py").exists():
        print(f"eval_dedup: missing {', '.join(missing) or 'score.py'} under {data}: this evaluation reads the "
              "shared development data (../shared/data and ../shared/score.py), which is not shipped with "
              "neardup; pass --data DIR", file=sys.stderr)
        return 2
    global CONFIG
    changes = {}
    for item in args.set:
        name, _, value = item.partition("=")
        changes[name] = type(getattr(Config(), name))(json.loads(value))
    CONFIG = Config().with_options(**changes)
    if changes:
        print(f"neardup configuration: {changes}")
    sections = {s.strip().upper() for s in args.only.split(",")}
    started = time.perf_counter()
    if "A" in sections:
        section_a(data)
    if "B" in sections:
        for corpus in filter(None, args.corpora.split(",")):
            section_b(data, corpus)
    if "C" in sections:
        section_c(data)
    print(f"total {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
