"""The persistent index at scale: ingest speed, memory, disk and query latency, against datasketch.

Builds a synthetic corpus of --docs articles from the real paragraphs of the
shared development data (bbc-news.jsonl, reuters21578.jsonl and
syndication-dev.jsonl in ../shared/data, or --data; only READ, nothing from
there is written into the repository). Each article is a random headline-like
line plus 4-15 real paragraphs drawn at random (paragraphs of at least 8
words). The source holds only ~100k distinct such paragraphs, so at 100k+
articles every paragraph would recur in dozens of unrelated articles, which
neardup (rightly) reports as partial copies; to keep unrelated articles
unrelated, each drawn paragraph has --mutate (default 0.3) of its words
replaced by words drawn from the corpus (--mutate 0 keeps them verbatim).
About --copy-rate (10%) of the articles are planted copies of an earlier
original from the last 1,000 articles, of one of three kinds: ``byline``
(full copy with a byline and a footer line added), ``truncated`` (the first
60% of the paragraphs) and ``dropped`` (one paragraph left out). Generation is
streaming and seeded (--seed); the corpus is written once to a JSONL file in
the work folder (default under /tmp, removed at the end unless --keep).

Each measurement runs in its own process, so that its peak RSS is its own:

* neardup ingest: ``Index.open(folder, writable=True).add(docs, batch_size=5000,
  workers=W)`` for each W in --workers, reading the JSONL and building
  ``Document.from_text`` (counted, as for datasketch);
* neardup queries: ``Index.open(folder)`` then ``Index.query`` one document at a
  time (fingerprinting and verification included) on --queries documents:
  half planted originals, half random originals without copies;
* datasketch: ``MinHashLSH(threshold=0.5, num_perm=128)`` filled in an
  ``insertion_session()`` with article MinHashes (``affine32``,
  ``update_batch`` over neardup's own shingle hashes, computed per batch with
  neardup's normalize_many/shingle_paragraphs; all counted in ingest), then
  the same queries (MinHash of the query + ``lsh.query``). If its ingest runs
  past --datasketch-budget seconds it stops there and is measured at that size.

Recall: a planted copy counts as found when its id is among the results of the
query with its original. Ingest MB are megabytes (10^6 bytes) of UTF-8 text.
Peak RSS is ``ru_maxrss``, which counts the pages of the index files mapped
with mmap; the "anonymous" rows (sampled every 50 ms) leave those out.

    PYTHONPATH=src python benchmarks/bench_index.py [--docs 100000] [--workers 1,2] [--repeats 1]
    nohup env PYTHONPATH=src python benchmarks/bench_index.py --docs 1000000 > /tmp/bench_index_1m.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench_fingerprint import DATA, SOURCES, machine_line, read_jsonl, require_data

NUM_PERM, SEED = 128, 1
KINDS = ("byline", "truncated", "dropped")
WINDOW = 1000
MIN_WORDS = 8
FIRST_NAMES = ("Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jon")
LAST_NAMES = ("Adams", "Baker", "Chen", "Duarte", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jones")
OUTLETS = ("Daily Ledger", "Morning Post", "City Times", "Coast Herald", "Valley News", "Metro Wire")


# -- the synthetic corpus ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Which articles are copies, of which original and of which kind (-1 / "" for originals)."""

    source: np.ndarray   # int64 (docs,)
    kind: np.ndarray     # int8 (docs,): index into KINDS, -1 for originals

    def copies_of(self) -> dict[int, list[tuple[int, str]]]:
        out: dict[int, list[tuple[int, str]]] = {}
        for copy in np.flatnonzero(self.source >= 0).tolist():
            out.setdefault(int(self.source[copy]), []).append((copy, KINDS[self.kind[copy]]))
        return out


def make_plan(docs: int, copy_rate: float, seed: int) -> Plan:
    rng = np.random.default_rng(seed)
    is_copy = rng.random(docs) < copy_rate
    is_copy[0] = False
    originals = np.flatnonzero(~is_copy)
    index = np.arange(docs)
    lo = np.searchsorted(originals, index - WINDOW)
    hi = np.searchsorted(originals, index)
    pick = lo + (rng.random(docs) * (hi - lo)).astype(np.int64)
    source = np.where(is_copy, originals[np.minimum(pick, len(originals) - 1)], -1)
    kind = np.where(is_copy, rng.integers(0, len(KINDS), docs), -1).astype(np.int8)
    return Plan(source.astype(np.int64), kind)


def doc_id(number: int) -> str:
    return f"doc-{number:07d}"


def doc_number(id: str) -> int:
    return int(id[4:])


def load_paragraphs(data: Path) -> list[str]:
    """Distinct real paragraphs of at least MIN_WORDS words (headlines skipped), whitespace collapsed."""
    from neardup import Document

    seen: dict[str, None] = {}
    for name in SOURCES:
        for record in read_jsonl(data / name):
            document = Document.from_text(str(record["id"]), record["text"])
            for start, end in document.paragraphs[1:]:
                words = document.text[start:end].split()
                if len(words) >= MIN_WORDS:
                    seen[" ".join(words)] = None
    return list(seen)


class Generator:
    """Seeded article texts: a headline and 4-15 (mutated) real paragraphs, or a planted copy."""

    def __init__(self, paragraphs: list[str], plan: Plan, mutate: float, seed: int) -> None:
        self.paragraphs, self.plan, self.mutate = paragraphs, plan, mutate
        self.random = random.Random(seed)
        sample = random.Random(seed + 1)
        self.vocabulary = [w for p in sample.sample(paragraphs, min(len(paragraphs), 20_000)) for w in p.split()]
        self.recent: dict[int, list[str]] = {}
        self.order: deque[int] = deque()

    def articles(self) -> Iterator[tuple[int, str]]:
        for number in range(len(self.plan.source)):
            source = int(self.plan.source[number])
            if source >= 0:
                lines = self.copy(self.recent[source], KINDS[self.plan.kind[number]])
            else:
                lines = self.original()
                self.remember(number, lines)
            yield number, "\n".join(lines)

    def original(self) -> list[str]:
        rnd = self.random
        headline = " ".join(rnd.choice(self.vocabulary) for _ in range(rnd.randint(5, 10))).capitalize()
        body = [self.mutated(rnd.choice(self.paragraphs)) for _ in range(rnd.randint(4, 15))]
        return [headline.rstrip(".")] + body

    def mutated(self, paragraph: str) -> str:
        if self.mutate <= 0:
            return paragraph
        rnd, vocabulary, rate = self.random.random, self.vocabulary, self.mutate
        words = paragraph.split()
        last = len(words) - 1  # kept, so that the paragraph still ends like a sentence
        return " ".join(vocabulary[int(rnd() * len(vocabulary))] if i < last and rnd() < rate else w
                        for i, w in enumerate(words))

    def copy(self, lines: list[str], kind: str) -> list[str]:
        rnd = self.random
        headline, body = lines[0], lines[1:]
        if kind == "byline":
            outlet = rnd.choice(OUTLETS)
            byline = f"By {rnd.choice(FIRST_NAMES)} {rnd.choice(LAST_NAMES)}, {outlet}"
            footer = f"Copyright 2024 {outlet}. All rights reserved. This material may not be redistributed."
            return [headline, byline] + body + [footer]
        if kind == "truncated":
            return [headline] + body[:max(1, round(0.6 * len(body)))]
        drop = rnd.randrange(len(body))
        return [headline] + body[:drop] + body[drop + 1:]

    def remember(self, number: int, lines: list[str]) -> None:
        self.recent[number] = lines
        self.order.append(number)
        while self.order and self.order[0] < number - WINDOW:
            del self.recent[self.order.popleft()]


def choose_queries(plan: Plan, count: int, seed: int) -> dict[int, str]:
    """Document number -> role: half planted originals, half originals without copies, plus warm-up."""
    rng = np.random.default_rng(seed + 2)
    sources = np.unique(plan.source[plan.source >= 0])
    plain = np.setdiff1d(np.flatnonzero(plan.source < 0), sources)
    planted = rng.choice(sources, min(len(sources), count // 2), replace=False)
    others = rng.choice(plain, min(len(plain), count - len(planted) + 10), replace=False)
    roles = {int(n): "original" for n in planted}
    roles.update({int(n): "random" for n in others[10:]})
    roles.update({int(n): "warmup" for n in others[:10]})
    return roles


def write_corpus(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Generate the corpus (streaming) into work/corpus.jsonl and the queries into work/queries.jsonl."""
    start = time.perf_counter()
    paragraphs = load_paragraphs(args.data)
    plan = make_plan(args.docs, args.copy_rate, args.seed)
    roles = choose_queries(plan, args.queries, args.seed)
    generator = Generator(paragraphs, plan, args.mutate, args.seed)
    size, queries = 0, []
    with open(work / "corpus.jsonl", "w", encoding="utf-8") as out:
        for number, text in generator.articles():
            out.write(json.dumps({"id": doc_id(number), "text": text}, ensure_ascii=False) + "\n")
            size += len(text.encode("utf-8"))
            if number in roles:
                queries.append({"id": doc_id(number), "role": roles[number], "text": text})
    with open(work / "queries.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(q, ensure_ascii=False) + "\n" for q in queries)
    kinds = Counter(KINDS[k] for k in plan.kind[plan.kind >= 0].tolist())
    return {"docs": args.docs, "bytes": size, "paragraph_pool": len(paragraphs), "copies": dict(kinds),
            "seconds": time.perf_counter() - start, "plan": plan}


# -- the measured processes -----------------------------------------------------------------------------------


def corpus_documents(path: Path, limit: int | None = None) -> Iterator[Any]:
    from neardup import Document

    for number, record in enumerate(read_jsonl(path)):
        if limit is not None and number >= limit:
            return
        yield Document.from_text(record["id"], record["text"])


def queries_of(work: Path) -> list[dict[str, Any]]:
    return list(read_jsonl(work / "queries.jsonl"))


class AnonymousPeak:
    """Samples this process's anonymous resident memory (heap, arrays; not file pages mapped
    from the index, which the kernel can drop) every 50 ms and keeps the peak."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, status_mb("RssAnon"))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, status_mb("RssAnon"))


def peak_rss(anonymous: AnonymousPeak) -> dict[str, float]:
    """Peak resident memory (MB) of this process, its largest (waited-for) child, and its anonymous peak."""
    return {"self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "anon_mb": anonymous.stop()}


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status, in MB."""
    with open("/proc/self/status", encoding="ascii") as handle:
        return next((int(line.split()[1]) for line in handle if line.startswith(field + ":")), 0) / 1024


def current_rss_mb() -> float:
    return status_mb("VmRSS")


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def child_neardup_ingest(work: Path, folder: Path, workers: int, batch_size: int) -> dict[str, Any]:
    from neardup import Index

    shutil.rmtree(folder, ignore_errors=True)
    anonymous, baseline, done, last = AnonymousPeak(), current_rss_mb(), [0], [time.perf_counter()]
    start = time.perf_counter()

    def progress(report: Any) -> None:
        done[0] += report.added
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            rate = done[0] / (last[0] - start)
            print(f"    neardup workers={workers}: {done[0]:,} docs, {rate:,.0f} docs/s, "
                  f"rss {current_rss_mb():,.0f} MB", file=sys.stderr, flush=True)

    index = Index.open(str(folder), writable=True)
    report = index.add(corpus_documents(work / "corpus.jsonl"), batch_size=batch_size, workers=workers,
                       on_batch=progress)
    documents = len(index)
    index.close()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "added": report.added, "skipped": dict(report.skipped), "documents": documents,
            "disk_bytes": folder_bytes(folder), "baseline_mb": baseline, **peak_rss(anonymous)}


def child_neardup_query(work: Path, folder: Path) -> dict[str, Any]:
    from neardup import Document, Index

    anonymous, queries = AnonymousPeak(), queries_of(work)
    index = Index.open(str(folder))
    for q in (q for q in queries if q["role"] == "warmup"):
        index.query(Document.from_text(q["id"], q["text"]))
    latencies, results = [], {}
    for q in (q for q in queries if q["role"] != "warmup"):
        document = Document.from_text(q["id"], q["text"])
        start = time.perf_counter()
        matches = index.query(document)
        latencies.append(time.perf_counter() - start)
        results[q["id"]] = [[m.id, m.kind] for m in matches]
    index.close()
    return {"latencies": latencies, "results": results, **peak_rss(anonymous)}


def child_datasketch(work: Path, batch_size: int, budget: float) -> dict[str, Any]:
    from datasketch import MinHashLSH

    anonymous, baseline = AnonymousPeak(), current_rss_mb()
    lsh = MinHashLSH(threshold=0.5, num_perm=NUM_PERM)
    sketcher = Sketcher()
    start, inserted, size, stopped = time.perf_counter(), 0, 0, False
    with lsh.insertion_session() as session:
        for batch in batches(corpus_documents(work / "corpus.jsonl"), batch_size):
            for document, sketch in zip(batch, sketcher.sketches(batch)):
                session.insert(document.id, sketch, check_duplication=False)
            inserted += len(batch)
            size += sum(len(d.text.encode("utf-8")) for d in batch)
            if time.perf_counter() - start > budget:
                stopped = True
                break
    seconds = time.perf_counter() - start
    print(f"    datasketch: {inserted:,} docs in {seconds:.0f} s", file=sys.stderr, flush=True)
    latencies, results = datasketch_queries(lsh, sketcher, work, inserted)
    return {"seconds": seconds, "documents": inserted, "bytes": size, "stopped": stopped,
            "bands_rows": [lsh.b, lsh.r], "latencies": latencies, "results": results,
            "baseline_mb": baseline, **peak_rss(anonymous)}


def datasketch_queries(lsh: Any, sketcher: Sketcher, work: Path, inserted: int) -> tuple[list[float], dict]:
    from neardup import Document

    queries = [q for q in queries_of(work) if doc_number(q["id"]) < inserted]
    for q in (q for q in queries if q["role"] == "warmup"):
        lsh.query(sketcher.sketches([Document.from_text(q["id"], q["text"])])[0])
    latencies, results = [], {}
    for q in (q for q in queries if q["role"] != "warmup"):
        document = Document.from_text(q["id"], q["text"])
        start = time.perf_counter()
        found = lsh.query(sketcher.sketches([document])[0])
        latencies.append(time.perf_counter() - start)
        results[q["id"]] = [[id, "candidate"] for id in found if id != q["id"]]
    return latencies, results


class Sketcher:
    """datasketch affine32 MinHashes of articles over neardup's shingle hashes (one shared permutation table)."""

    def __init__(self) -> None:
        from datasketch import MinHash

        self.permutations = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32",
                                    hashfunc=_identity).permutations

    def sketches(self, documents: list[Any]) -> list[Any]:
        from datasketch import MinHash

        from neardup.text.normalize import normalize_many
        from neardup.text.shingles import shingle_paragraphs

        counts = [len(d.paragraphs) for d in documents]
        flat = normalize_many([d.text[s:e] for d in documents for s, e in d.paragraphs])
        shingles = shingle_paragraphs(flat, 5)
        owner = np.repeat(np.arange(len(documents)), counts)[shingles.paragraph]
        bounds = np.searchsorted(owner, np.arange(len(documents) + 1))
        out = []
        for row in range(len(documents)):
            sketch = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32", hashfunc=_identity,
                             permutations=self.permutations)
            sketch.update_batch(shingles.hashes[bounds[row]:bounds[row + 1]].tolist())
            out.append(sketch)
        return out


def _identity(value: int) -> int:
    return value


def batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_child(args: argparse.Namespace, work: Path, *child: str) -> dict[str, Any]:
    """Run one measurement in a fresh process; it writes its result as JSON to a file."""
    out = work / "child-result.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *child, "--work", str(work),
               "--batch-size", str(args.batch_size), "--datasketch-budget", str(args.datasketch_budget)]
    subprocess.run(command, check=True)
    result = json.loads(out.read_text())
    out.unlink()
    return result


def child_main(args: argparse.Namespace) -> int:
    work = Path(args.work)
    what = args.child[0]
    if what == "neardup-ingest":
        result = child_neardup_ingest(work, Path(args.child[1]), int(args.child[2]), args.batch_size)
    elif what == "neardup-query":
        result = child_neardup_query(work, Path(args.child[1]))
    else:
        result = child_datasketch(work, args.batch_size, args.datasketch_budget)
    (work / "child-result.json").write_text(json.dumps(result))
    return 0


# -- results -----------------------------------------------------------------------------------------------


def recall(results: dict[str, list], queries: list[dict], copies: dict[int, list[tuple[int, str]]],
           limit: int) -> dict[str, Any]:
    """Recall of planted copies by kind, and mean matches per query with no planted copy."""
    found, total = Counter(), Counter()
    for q in queries:
        if q["role"] != "original" or q["id"] not in results:
            continue
        ids = {m[0] for m in results[q["id"]]}
        for copy, kind in copies.get(doc_number(q["id"]), []):
            if copy < limit:
                total[kind] += 1
                found[kind] += doc_id(copy) in ids
    randoms = [len(results[q["id"]]) for q in queries if q["role"] == "random" and q["id"] in results]
    return {"found": found, "total": total, "random_mean": statistics.mean(randoms) if randoms else float("nan"),
            "random_any": sum(1 for n in randoms if n) / len(randoms) if randoms else float("nan"),
            "queries": sum(1 for q in queries if q["id"] in results)}


def percentile_ms(latencies: list[float], p: float) -> float:
    return float(np.percentile(np.array(latencies) * 1e3, p)) if latencies else float("nan")


def print_report(corpus: dict[str, Any], ingests: dict[int, list[dict]], query: dict[str, Any],
                 sketch: dict[str, Any] | None, queries: list[dict]) -> None:
    docs, megabytes = corpus["docs"], corpus["bytes"] / 1e6
    copies = corpus["plan"].copies_of()
    columns: list[tuple[str, dict[str, Any]]] = []
    for workers, runs in ingests.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        col = {"docs": runs[-1]["documents"], "docs_s": docs / seconds, "mb_s": megabytes / seconds,
               "rss": max(max(r["self_mb"], r["children_mb"]) for r in runs),
               "rss_self": max(r["self_mb"] for r in runs), "rss_children": max(r["children_mb"] for r in runs),
               "rss_anon": max(r.get("anon_mb", float("nan")) for r in runs),
               "baseline": runs[-1]["baseline_mb"], "disk_doc": runs[-1]["disk_bytes"] / docs,
               "disk_raw": runs[-1]["disk_bytes"] / corpus["bytes"], "runs": len(runs)}
        if workers == min(ingests):
            col.update(query_columns(query, queries, copies, docs))
        columns.append((f"neardup w={workers}", col))
    if sketch is not None:
        col = {"docs": sketch["documents"], "docs_s": sketch["documents"] / sketch["seconds"],
               "mb_s": sketch["bytes"] / 1e6 / sketch["seconds"],
               "rss": max(sketch["self_mb"], sketch["children_mb"]), "rss_self": sketch["self_mb"],
               "rss_children": sketch["children_mb"], "rss_anon": sketch.get("anon_mb", float("nan")),
               "baseline": sketch["baseline_mb"],
               "disk_doc": float("nan"), "disk_raw": float("nan"), "runs": 1}
        col.update(query_columns(sketch, queries, copies, sketch["documents"]))
        columns.append(("datasketch", col))
    print_table(columns, sketch)


def query_columns(run: dict[str, Any], queries: list[dict], copies: dict, limit: int) -> dict[str, Any]:
    r = recall(run["results"], queries, copies, limit)
    total, found = sum(r["total"].values()), sum(r["found"].values())
    out = {"p50": percentile_ms(run["latencies"], 50), "p99": percentile_ms(run["latencies"], 99),
           "recall": found / total if total else float("nan"), "recall_of": f"{found}/{total}",
           "random_mean": r["random_mean"], "random_any": r["random_any"], "queries": r["queries"],
           "query_rss": run["self_mb"], "query_anon": run.get("anon_mb", float("nan"))}
    for kind in KINDS:
        out[f"recall_{kind}"] = f"{r['found'][kind]}/{r['total'][kind]}"
    return out


ROWS = (  # key, label, format, target
    ("docs", "documents indexed", "{:,.0f}", ""),
    ("runs", "ingest runs (median shown)", "{:.0f}", ""),
    ("docs_s", "ingest docs/s", "{:,.0f}", ""),
    ("mb_s", "ingest MB/s of text", "{:.2f}", ">= 25 and >= 4x datasketch"),
    ("rss", "peak RSS MB (max of process, pool child)", "{:,.0f}", "<= 1536"),
    ("rss_self", "  of the process itself", "{:,.0f}", ""),
    ("rss_children", "  of the largest pool worker", "{:,.0f}", ""),
    ("rss_anon", "  process, anonymous only (heap, arrays)", "{:,.0f}", ""),
    ("baseline", "  RSS before ingest", "{:,.0f}", ""),
    ("disk_doc", "disk bytes per article", "{:,.0f}", ""),
    ("disk_raw", "disk / raw text", "{:.2f}", "<= 1.00"),
    ("queries", "queries timed", "{:,.0f}", ""),
    ("p50", "query p50 ms (one at a time)", "{:.2f}", "<= 2"),
    ("p99", "query p99 ms", "{:.2f}", "<= 20"),
    ("query_rss", "peak RSS MB of the query process", "{:,.0f}", ""),
    ("query_anon", "  anonymous only", "{:,.0f}", ""),
    ("recall", "recall of planted copies", "{:.3f}", ""),
    ("recall_of", "  found / planted", "{}", ""),
    ("recall_byline", "  byline+footer copies", "{}", ""),
    ("recall_truncated", "  truncated to 60%", "{}", ""),
    ("recall_dropped", "  one paragraph dropped", "{}", ""),
    ("random_mean", "results per query w/o planted copy", "{:.2f}", ""),
    ("random_any", "  share of those with any result", "{:.3f}", ""),
)


def print_table(columns: list[tuple[str, dict[str, Any]]], sketch: dict[str, Any] | None) -> None:
    names = [name for name, _ in columns]
    ratio = sketch is not None and len(columns) > 1
    header = f"{'metric':<42}" + "".join(f"{n:>14}" for n in names)
    header += f"{'nd/ds':>9}" if ratio else ""
    print(header + "  target")
    for key, label, fmt, target in ROWS:
        cells = [c.get(key) for _, c in columns]
        line = f"{label:<42}" + "".join(f"{_fmt(fmt, v):>14}" for v in cells)
        if ratio:
            line += f"{_ratio(cells[0], cells[-1]) if key in RATIO_ROWS else '':>9}"
        print(line + (f"  {target}" if target else ""))
    if sketch is not None:
        note = " (stopped at the time budget)" if sketch["stopped"] else ""
        print(f"datasketch MinHashLSH bands x rows = {sketch['bands_rows'][0]} x {sketch['bands_rows'][1]}, "
              f"in memory, no verification, one process for ingest and queries{note}; "
              f"nd/ds = first neardup column / datasketch")


RATIO_ROWS = {"docs_s", "mb_s", "rss", "rss_self", "rss_anon", "p50", "p99", "recall"}


def _ratio(first: Any, last: Any) -> str:
    if not isinstance(first, (int, float)) or not isinstance(last, (int, float)) or not last or first != first:
        return ""
    return f"{first / last:.2f}x"


def _fmt(fmt: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "n/a"
    return fmt.format(value)


# -- main -------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the shared development data")
    parser.add_argument("--docs", type=int, default=100_000, help="synthetic articles (default 100,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--copy-rate", type=float, default=0.10, help="share of articles that are planted copies")
    parser.add_argument("--mutate", type=float, default=0.3, help="share of words replaced in each drawn paragraph")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--workers", default="1,2", help="comma-separated neardup worker counts (default 1,2)")
    parser.add_argument("--repeats", type=int, default=1, help="ingest runs per worker count (median shown)")
    parser.add_argument("--no-datasketch", action="store_true")
    parser.add_argument("--datasketch-budget", type=float, default=600.0,
                        help="seconds of datasketch ingest before it stops and is measured at that size")
    parser.add_argument("--workdir", type=Path, help="where to put the corpus and indexes (default: a new /tmp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.child:
        return child_main(args)
    require_data(args.data)
    print(machine_line(), flush=True)
    print(f"load average at start: {Path('/proc/loadavg').read_text().split()[:3]}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="neardup-bench-", dir=args.workdir))
    try:
        run_all(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_all(args: argparse.Namespace, work: Path) -> None:
    corpus = write_corpus(args, work)
    print(f"corpus: {corpus['docs']:,} articles, {corpus['bytes'] / 1e6:,.1f} MB of text "
          f"({corpus['bytes'] / corpus['docs']:,.0f} B/article), planted copies {corpus['copies']}, "
          f"paragraph pool {corpus['paragraph_pool']:,}, mutate={args.mutate}, seed={args.seed}; "
          f"generated in {corpus['seconds']:.0f} s", flush=True)
    queries = queries_of(work)
    ingests: dict[int, list[dict]] = {}
    query: dict[str, Any] = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        folder = work / f"index-w{workers}"
        for run in range(args.repeats):
            log(f"  neardup ingest workers={workers} run {run + 1}/{args.repeats} ...")
            result = run_child(args, work, "neardup-ingest", str(folder), str(workers))
            ingests.setdefault(workers, []).append(result)
            log(f"    {result['seconds']:.0f} s, {result['documents']:,} docs, skipped {result['skipped']}")
        if not query:
            log("  neardup queries ...")
            query = run_child(args, work, "neardup-query", str(folder))
        shutil.rmtree(folder, ignore_errors=True)
    sketch = None
    if not args.no_datasketch:
        log("  datasketch ingest + queries ...")
        sketch = run_child(args, work, "datasketch")
    print(f"load average at end: {Path('/proc/loadavg').read_text().split()[:3]}")
    print_report(corpus, ingests, query, sketch, queries)


if __name__ == "__main__":
    sys.exit(main())
