"""Does ``neardup dedup`` remove documents whose text the kept copy does not hold?

An independent judge of a dedup run. It reads only two things: the input
corpus (JSON Lines, ``id`` and ``text`` fields, or --id-field/--text-field) and
the CLUSTERS file that ``neardup dedup --clusters`` wrote (one JSON line per
input document: ``id``, ``cluster`` = the id of the representative kept for
it, ``representative``). It does NOT import neardup and uses none of its
normalisation, paragraphs, shingles, MinHash or the ``jaccard``/``containment``
numbers in CLUSTERS -- so a bug in those cannot hide itself. The ``kind``
label is only displayed.

The measure, for every removed document A (``representative`` false) and its
representative B (the document whose id is A's ``cluster``):

* tokens: ``re.findall(r"\\w+", text.lower())`` (Unicode word characters);
* grams: the set of word 5-grams over the whole text (across paragraph and
  sentence breaks); a text of 1-4 tokens has one gram, all its tokens; a text
  without any token has no gram;
* containment C = |A ∩ B| / |A| (how much of the removed text the kept copy
  holds) and Jaccard J = |A ∩ B| / |A ∪ B|. A removed text without any
  token has nothing to lose: C = 1 (J = 1 if B has no token either, else 0);
* a **loss** is a removal with C < 0.5 and J < 0.5: at least half of the
  removed text's 5-grams appear nowhere in what was kept for it, and the two
  are not even loosely the same text. The target is losses <= 0.5 % of
  removals.

Grams are hashed exactly: each distinct token gets an integer id (a dict), the
five ids of a gram (zero-padded for short texts) are mixed into a 64-bit hash
with numpy, and each document's hashes are sorted and deduplicated in one
lexsort over the corpus; intersections are ``np.searchsorted`` of one sorted
array into the other. Only removed documents and their representatives are
tokenised. A false match needs a 64-bit collision between two specific texts
(about 1e-13 per pair of average news articles). reuters21578 (21,577 docs,
20 MB) is checked in about a second.

Also reported, as errors: removals whose representative id is not a document
of the input, input ids missing from CLUSTERS, CLUSTERS lines for ids that are
not in the input or repeated, malformed lines, and inconsistent lines (a
representative whose cluster is not itself, a removal pointing at itself or at
a document that is not marked representative). Input records with an empty or
missing text are not counted as documents (neardup skips them); a repeated
input id keeps its first record (as neardup's reader does) and is counted.

Modes:

    # check one run
    PYTHONPATH=src python benchmarks/check_removals.py INPUT.jsonl CLUSTERS.jsonl [--worst 20] [--json]
    # run dedup on the four shared corpora for each policy and check each run
    PYTHONPATH=src python benchmarks/check_removals.py --suite [--data ../shared/data] \\
        [--keep first,longest] [--workers 1] [--neardup-args='--no-partial'] [--details] [--json]

The suite runs ``python -m neardup dedup`` as a subprocess with
PYTHONPATH=src of the repository this script lives in, outputs in a temporary
folder (--workdir to keep them), and prints one table (corpus, policy,
documents, removed, losses, loss %, target, errors, dedup wall time) and the
named cases as PASS/FAIL lines. --json prints one JSON line per run instead
(the cases inside). Exit code 0 when every run completed (targets missed or
not: the table says so), 1 when a dedup run failed, 2 on missing data or
bad arguments.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
SUITE = ("news-scrape-2019-06-01.jsonl", "reuters21578.jsonl", "bbc-news.jsonl", "syndication-dev.jsonl")
GRAM = 5
LOSS_BELOW = 0.5          # a loss: containment < 0.5 and Jaccard < 0.5
TARGET_LOSS_PERCENT = 0.5  # of removals
BUCKETS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
TOKEN = re.compile(r"\w+")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# -- reading ---------------------------------------------------------------------------------------


def _open(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with _open(path) as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield number, line


def _text(value: Any) -> str | None:
    """A text field: a string, or a list of paragraphs (joined by blank lines)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return "\n\n".join(value)
    return None


@dataclass
class Corpus:
    texts: dict[str, str]          # id -> text, first record of each id, in input order
    duplicate_ids: int = 0         # records whose id was already seen (ignored)
    without_text: int = 0          # records with no usable text (not counted as documents)
    bad_records: int = 0           # lines that are not JSON objects with an id


def read_corpus(path: Path, id_field: str = "id", text_field: str = "text") -> Corpus:
    corpus = Corpus(texts={})
    for _, line in _lines(path):
        try:
            record = json.loads(line)
        except ValueError:
            corpus.bad_records += 1
            continue
        if not isinstance(record, dict) or record.get(id_field) in (None, ""):
            corpus.bad_records += 1
            continue
        text = _text(record.get(text_field))
        if text is None or not text.strip():
            corpus.without_text += 1
            continue
        key = str(record[id_field])
        if key in corpus.texts:
            corpus.duplicate_ids += 1
            continue
        corpus.texts[key] = text
    return corpus


@dataclass
class Assignment:
    id: str
    cluster: str
    representative: bool
    kind: str


def read_clusters(path: Path) -> tuple[list[Assignment], int]:
    """The CLUSTERS lines (only id, cluster, representative and the kind label), and the malformed count."""
    rows, bad = [], 0
    for _, line in _lines(path):
        try:
            record = json.loads(line)
            rows.append(Assignment(str(record["id"]), str(record["cluster"]), bool(record["representative"]),
                                   str(record.get("kind") or "?")))
        except (ValueError, KeyError, TypeError):
            bad += 1
    return rows, bad


# -- grams -----------------------------------------------------------------------------------------

_C1, _C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _C1
    x = x ^ (x >> np.uint64(27))
    x = x * _C2
    return x ^ (x >> np.uint64(31))


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def gram_sets(texts: list[str], n: int = GRAM) -> list[np.ndarray]:
    """For each text, the sorted distinct 64-bit hashes of its word n-grams (see the module doc)."""
    vocab: dict[str, int] = {}
    ids: list[int] = []
    lengths = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        words = tokens(text)
        lengths[i] = len(words)
        ids.extend([vocab.setdefault(w, len(vocab) + 1) for w in words])  # ids >= 1; 0 pads short texts
    total = len(ids)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    token_ids = np.zeros(total + n, dtype=np.uint64)
    token_ids[:total] = np.asarray(ids, dtype=np.uint64)
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    position = np.arange(total, dtype=np.int64)
    doc_end = ends[doc]
    with np.errstate(over="ignore"):
        h = np.full(total, np.uint64(n), dtype=np.uint64)
        for k in range(n):
            word = np.where(position + k < doc_end, token_ids[k:k + total], np.uint64(0))
            h = _mix(h * _GOLDEN + word)
    full = position + n <= doc_end
    short = (lengths[doc] < n) & (position == starts[doc])
    keep = full | short
    h, doc = h[keep], doc[keep]
    order = np.lexsort((h, doc))
    h, doc = h[order], doc[order]
    distinct = np.ones(len(h), dtype=bool)
    distinct[1:] = (h[1:] != h[:-1]) | (doc[1:] != doc[:-1])
    h, doc = h[distinct], doc[distinct]
    bounds = np.searchsorted(doc, np.arange(len(texts) + 1))
    return [h[bounds[i]:bounds[i + 1]] for i in range(len(texts))]


def overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(containment of a in b, Jaccard) of two sorted distinct arrays."""
    if len(a) == 0:
        return 1.0, (1.0 if len(b) == 0 else 0.0)
    if len(b) == 0:
        return 0.0, 0.0
    at = np.searchsorted(b, a)
    at[at == len(b)] = 0
    common = int(np.count_nonzero(b[at] == a))
    return common / len(a), common / (len(a) + len(b) - common)


# -- the check -------------------------------------------------------------------------------------


@dataclass
class Removal:
    id: str
    representative: str
    kind: str
    containment: float
    jaccard: float
    grams: int
    representative_grams: int

    @property
    def loss(self) -> bool:
        return self.containment < LOSS_BELOW and self.jaccard < LOSS_BELOW


@dataclass
class Report:
    documents: int
    assigned: int
    removals: list[Removal]
    errors: dict[str, list[str]]   # kind of error -> the ids concerned
    corpus: Corpus
    clusters: dict[str, Assignment]
    seconds: float = 0.0

    @property
    def losses(self) -> list[Removal]:
        return sorted((r for r in self.removals if r.loss), key=lambda r: (r.containment, r.jaccard, r.id))

    @property
    def loss_percent(self) -> float:
        return 100.0 * len(self.losses) / len(self.removals) if self.removals else 0.0

    @property
    def error_count(self) -> int:
        return sum(len(v) for v in self.errors.values())

    def distribution(self) -> dict[str, int]:
        values = np.array([r.containment for r in self.removals], dtype=float)
        out = {}
        for low, high in itertools.pairwise(BUCKETS):
            out[f"[{low:.1f}, {high:.1f})"] = int(np.count_nonzero((values >= low) & (values < high)))
        out["1.0"] = int(np.count_nonzero(values >= 1.0))
        return out

    def quantiles(self) -> dict[str, float]:
        if not self.removals:
            return {}
        values = np.array([r.containment for r in self.removals], dtype=float)
        return {f"p{q:g}": round(float(np.percentile(values, q)), 4) for q in (0, 1, 5, 10, 25, 50)}

    def summary(self) -> dict[str, Any]:
        return {
            "documents": self.documents, "removed": len(self.removals), "losses": len(self.losses),
            "loss_percent": round(self.loss_percent, 3), "target_percent": TARGET_LOSS_PERCENT,
            "target_met": self.loss_percent <= TARGET_LOSS_PERCENT, "errors": self.error_count,
        }


ERRORS = {
    "representative_not_in_input": "removals whose representative id is not a document of the input",
    "missing_from_clusters": "input documents missing from CLUSTERS",
    "not_in_input": "CLUSTERS lines for ids not in the input",
    "repeated_in_clusters": "ids with more than one CLUSTERS line",
    "malformed_lines": "CLUSTERS lines without id/cluster/representative",
    "inconsistent": "a representative whose cluster is another id, a removal pointing at itself or at a "
                    "document not marked representative",
}


def check(corpus: Corpus, rows: list[Assignment], malformed: int = 0) -> Report:
    started = time.perf_counter()
    texts = corpus.texts
    errors: dict[str, list[str]] = {key: [] for key in ERRORS}
    errors["malformed_lines"] = [f"{malformed} line(s)"] if malformed else []
    clusters: dict[str, Assignment] = {}
    for row in rows:
        if row.id in clusters:
            errors["repeated_in_clusters"].append(row.id)
            continue
        clusters[row.id] = row
        if row.id not in texts:
            errors["not_in_input"].append(row.id)
    errors["missing_from_clusters"] = [i for i in texts if i not in clusters]

    pairs: list[Assignment] = []
    for row in clusters.values():
        if row.representative:
            if row.cluster != row.id:
                errors["inconsistent"].append(row.id)
            continue
        if row.cluster == row.id:
            errors["inconsistent"].append(row.id)
            continue
        if row.cluster not in texts:
            errors["representative_not_in_input"].append(row.id)
            continue
        target = clusters.get(row.cluster)
        if target is None or not target.representative:
            errors["inconsistent"].append(row.id)   # still measured against the document it names
        if row.id in texts:
            pairs.append(row)

    needed = list(dict.fromkeys([p.id for p in pairs] + [p.cluster for p in pairs]))
    slot = {key: i for i, key in enumerate(needed)}
    grams = gram_sets([texts[key] for key in needed])
    removals = []
    for row in pairs:
        a, b = grams[slot[row.id]], grams[slot[row.cluster]]
        containment, jaccard = overlap(a, b)
        removals.append(Removal(row.id, row.cluster, row.kind, containment, jaccard, len(a), len(b)))
    report = Report(documents=len(texts), assigned=len(clusters), removals=removals, errors=errors,
                    corpus=corpus, clusters=clusters)
    report.seconds = time.perf_counter() - started
    return report


def check_files(corpus_path: Path, clusters_path: Path, id_field: str = "id", text_field: str = "text") -> Report:
    rows, malformed = read_clusters(clusters_path)
    return check(read_corpus(corpus_path, id_field, text_field), rows, malformed)


# -- printing --------------------------------------------------------------------------------------


def snippet(text: str, width: int = 80) -> str:
    return " ".join(text[:width].split())


def report_dict(report: Report, worst: int = 20) -> dict[str, Any]:
    texts = report.corpus.texts
    return {
        **report.summary(),
        "containment_distribution": report.distribution(),
        "containment_quantiles": report.quantiles(),
        "losses_by_kind": dict(Counter(r.kind for r in report.losses)),
        "errors_by_type": {k: len(v) for k, v in report.errors.items()},
        "error_examples": {k: v[:5] for k, v in report.errors.items() if v},
        "input": {"duplicate_ids": report.corpus.duplicate_ids, "without_text": report.corpus.without_text,
                  "bad_records": report.corpus.bad_records},
        "worst_losses": [
            {"id": r.id, "representative": r.representative, "kind": r.kind,
             "containment": round(r.containment, 4), "jaccard": round(r.jaccard, 4),
             "grams": r.grams, "representative_grams": r.representative_grams,
             "text": snippet(texts[r.id]), "representative_text": snippet(texts[r.representative])}
            for r in report.losses[:worst]],
        "check_seconds": round(report.seconds, 3),
    }


def format_report(report: Report, worst: int = 20, indent: str = "") -> str:
    d = report_dict(report, worst)
    out = [f"documents: {d['documents']}   removed: {d['removed']}   losses: {d['losses']} "
           f"({d['loss_percent']:.2f} % of removals; target <= {TARGET_LOSS_PERCENT} %: "
           f"{'met' if d['target_met'] else 'MISSED'})   check: {d['check_seconds']:.2f} s"]
    notes = [f"{v} {k.replace('_', ' ')}" for k, v in d["input"].items() if v]
    if notes:
        out.append("input records: " + ", ".join(notes))
    out.append("containment of removed documents in their representative: " +
               "  ".join(f"{k} {v}" for k, v in d["containment_distribution"].items()))
    if d["containment_quantiles"]:
        out.append("  quantiles: " + "  ".join(f"{k} {v:.3f}" for k, v in d["containment_quantiles"].items()))
    if d["losses_by_kind"]:
        out.append("losses by kind (CLUSTERS label): " +
                   ", ".join(f"{k} {v}" for k, v in sorted(d["losses_by_kind"].items(), key=lambda kv: -kv[1])))
    if report.error_count:
        out.append(f"ERRORS: {report.error_count}")
        for key, ids in report.errors.items():
            if ids:
                out.append(f"  {ERRORS[key]}: {len(ids)} (e.g. {', '.join(ids[:5])})")
    else:
        out.append("errors: none")
    if d["worst_losses"]:
        out.append(f"worst {len(d['worst_losses'])} losses (containment C of the removed text, Jaccard J, "
                   f"5-gram counts):")
        for r in d["worst_losses"]:
            out.append(f"  {r['id']} -> {r['representative']}  C={r['containment']:.3f} J={r['jaccard']:.3f} "
                       f"grams {r['grams']}/{r['representative_grams']}  [{r['kind']}]")
            out.append(f"      removed: {r['text']}")
            out.append(f"      kept:    {r['representative_text']}")
    return "\n".join(indent + line for line in out)


# -- named cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    ids: tuple[str, ...]
    test: Callable[[dict[str, Assignment]], tuple[bool, str]]


def _not_representative_of_others(doc: str) -> Callable[[dict[str, Assignment]], tuple[bool, str]]:
    def test(clusters: dict[str, Assignment]) -> tuple[bool, str]:
        others = [a.id for a in clusters.values() if a.cluster == doc and a.id != doc]
        return (not others, f"represents {len(others)} other document(s)"
                + (f": {', '.join(others[:8])}{' ...' if len(others) > 8 else ''}" if others else ""))
    return test


def _not_removed_for(doc: str, other: str) -> Callable[[dict[str, Assignment]], tuple[bool, str]]:
    def test(clusters: dict[str, Assignment]) -> tuple[bool, str]:
        a = clusters[doc]
        state = "kept" if a.representative else f"removed for {a.cluster} [{a.kind}]"
        return (a.representative or a.cluster != other, f"{doc} {state}")
    return test


def _apart(first: str, second: str) -> Callable[[dict[str, Assignment]], tuple[bool, str]]:
    def test(clusters: dict[str, Assignment]) -> tuple[bool, str]:
        a, b = clusters[first], clusters[second]
        return (a.cluster != b.cluster, f"clusters {a.cluster} and {b.cluster}")
    return test


CASES = (
    Case("scrape-32971 (two copyright lines only) represents no other document", ("scrape-32971",),
         _not_representative_of_others("scrape-32971")),
    Case("reuters-887 (full Comalco results) not removed in favour of reuters-886 (one-line flash)",
         ("reuters-887", "reuters-886"), _not_removed_for("reuters-887", "reuters-886")),
    Case("reuters-1708 and reuters-1345 (dividends of different companies) in different clusters",
         ("reuters-1708", "reuters-1345"), _apart("reuters-1708", "reuters-1345")),
    Case("reuters-695 and reuters-693 (two different Franklin funds) in different clusters",
         ("reuters-695", "reuters-693"), _apart("reuters-695", "reuters-693")),
)


def run_cases(report: Report) -> list[dict[str, Any]]:
    """The named cases whose ids are all documents of this corpus."""
    results = []
    for case in CASES:
        if not all(i in report.corpus.texts for i in case.ids):
            continue
        if not all(i in report.clusters for i in case.ids):
            results.append({"case": case.name, "passed": False, "detail": "missing from CLUSTERS"})
            continue
        passed, detail = case.test(report.clusters)
        results.append({"case": case.name, "passed": passed, "detail": detail})
    return results


# -- suite -----------------------------------------------------------------------------------------


def run_dedup(corpus: Path, keep: str, workers: int, extra: list[str], workdir: Path,
              id_field: str, text_field: str) -> tuple[int, float, Path, str]:
    stem = f"{corpus.name.split('.')[0]}.{keep}"
    kept, clusters = workdir / f"{stem}.kept.jsonl", workdir / f"{stem}.clusters.jsonl"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    command = [sys.executable, "-m", "neardup", "dedup", str(corpus), "--out", str(kept),
               "--clusters", str(clusters), "--keep", keep, "--workers", str(workers),
               "--id-field", id_field, "--text-field", text_field, *extra]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    (workdir / f"{stem}.stderr").write_text(done.stderr)
    return done.returncode, seconds, clusters, done.stderr


def table(rows: list[dict[str, Any]]) -> str:
    head = ("corpus", "keep", "documents", "removed", "losses", "loss %", "target <= 0.5 %", "errors", "dedup s")
    body = []
    for r in rows:
        if r.get("failed"):
            body.append((r["corpus"], r["keep"], "-", "-", "-", "-", f"dedup exit {r['exit_code']}", "-",
                         f"{r['dedup_seconds']:.1f}"))
            continue
        body.append((r["corpus"], r["keep"], str(r["documents"]), str(r["removed"]), str(r["losses"]),
                     f"{r['loss_percent']:.2f}", "met" if r["target_met"] else "MISSED", str(r["errors"]),
                     f"{r['dedup_seconds']:.1f}"))
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(head)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(head), line(tuple("-" * w for w in widths))] + [line(row) for row in body])


def suite(args: argparse.Namespace) -> int:
    data = args.data
    names = [n if n.endswith((".jsonl", ".jsonl.gz")) else n + ".jsonl" for n in args.corpora.split(",") if n]
    missing = [str(data / n) for n in names if not (data / n).exists()]
    if missing:
        print("check_removals: missing data: " + ", ".join(missing) + " (use --data FOLDER)", file=sys.stderr)
        return EXIT_USAGE
    policies = [p for p in args.keep.split(",") if p]
    bad = [p for p in policies if p not in ("first", "longest", "earliest", "cleanest")]
    if bad or not policies:
        print(f"check_removals: --keep takes first,longest,earliest,cleanest (got {args.keep!r})", file=sys.stderr)
        return EXIT_USAGE
    extra = shlex.split(args.neardup_args or "")
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="check_removals."))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    details: list[str] = []
    failed = False
    if not args.json:
        print(f"# neardup dedup from {ROOT / 'src'}; --workers {args.workers}"
              f"{' ' + ' '.join(extra) if extra else ''}; outputs in {workdir}; load {loadavg()}", flush=True)
    try:
        for name in names:
            corpus = read_corpus(data / name, args.id_field, args.text_field)
            for keep in policies:
                code, seconds, clusters_path, stderr = run_dedup(
                    data / name, keep, args.workers, extra, workdir, args.id_field, args.text_field)
                label = name.split(".")[0]
                row: dict[str, Any] = {"corpus": label, "keep": keep, "dedup_seconds": round(seconds, 2),
                                       "neardup_args": extra, "workers": args.workers}
                if code != 0:
                    failed = True
                    row.update(failed=True, exit_code=code, stderr_tail=stderr.strip().splitlines()[-5:])
                    rows.append(row)
                    details.append(f"## {label} --keep {keep}: dedup exit code {code}\n" +
                                   "\n".join("    " + s for s in row["stderr_tail"]))
                    continue
                rows_, malformed = read_clusters(clusters_path)
                report = check(corpus, rows_, malformed)
                summary = report_dict(report, args.worst)
                row.update(summary)
                row["cases"] = run_cases(report)
                rows.append(row)
                if args.json:
                    print(json.dumps(row, ensure_ascii=False), flush=True)
                if args.details:
                    details.append(f"## {label} --keep {keep}\n" + format_report(report, args.worst, "  "))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        for row in rows:
            if row.get("failed"):
                print(json.dumps(row, ensure_ascii=False))
        return EXIT_FAILED if failed else EXIT_OK
    print(table(rows))
    print()
    print("named cases:" if any(row.get("cases") for row in rows) else "named cases: none in these corpora")
    for row in rows:
        for case in row.get("cases", []):
            print(f"  {'PASS' if case['passed'] else 'FAIL'}  [{row['corpus']} --keep {row['keep']}] "
                  f"{case['case']}: {case['detail']}")
    errors = [r for r in rows if r.get("errors")]
    for r in errors:
        print(f"ERRORS in {r['corpus']} --keep {r['keep']}: " +
              ", ".join(f"{ERRORS[k]}: {v}" for k, v in r["errors_by_type"].items() if v))
    if details:
        print()
        print("\n\n".join(details))
    print(f"# load {loadavg()}")
    return EXIT_FAILED if failed else EXIT_OK


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# -- command line ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Check that every document neardup dedup removed is held by its representative "
                    "(word 5-gram containment/Jaccard, independent of neardup).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  PYTHONPATH=src python benchmarks/check_removals.py corpus.jsonl clusters.jsonl\n"
               "  PYTHONPATH=src python benchmarks/check_removals.py --suite --keep first,longest\n"
               "  PYTHONPATH=src python benchmarks/check_removals.py --suite --neardup-args='--no-partial' --json\n")
    parser.add_argument("input", nargs="?", type=Path, help="input corpus (JSON Lines, .gz allowed)")
    parser.add_argument("clusters", nargs="?", type=Path, help="the CLUSTERS file of neardup dedup")
    parser.add_argument("--id-field", default="id")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--worst", type=int, default=20, help="losses listed (default 20)")
    parser.add_argument("--json", action="store_true", help="JSON output (suite: one line per run)")
    suite_group = parser.add_argument_group("suite")
    suite_group.add_argument("--suite", action="store_true", help="run dedup on the shared corpora and check each")
    suite_group.add_argument("--data", type=Path, default=DATA, help="folder of the shared data (../shared/data)")
    suite_group.add_argument("--corpora", default=",".join(SUITE), help="comma-separated file names in --data")
    suite_group.add_argument("--keep", default="first,longest", help="comma-separated --keep policies")
    suite_group.add_argument("--workers", type=int, default=1, help="dedup --workers (default 1)")
    suite_group.add_argument("--neardup-args", default="", metavar="'ARGS'",
                             help="extra dedup options, one string: --neardup-args='--no-partial --threshold 0.9'")
    suite_group.add_argument("--workdir",
                             help="keep the dedup outputs in this folder (default: a temp folder, removed)")
    suite_group.add_argument("--details", action="store_true", help="also print each run's full report")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return EXIT_USAGE if stop.code else EXIT_OK
    if args.worst < 0 or args.workers < 0:
        print("check_removals: --worst and --workers must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    if args.suite:
        if args.input or args.clusters:
            print("check_removals: --suite takes no INPUT/CLUSTERS", file=sys.stderr)
            return EXIT_USAGE
        return suite(args)
    if not (args.input and args.clusters):
        print("check_removals: give INPUT and CLUSTERS, or --suite", file=sys.stderr)
        return EXIT_USAGE
    missing = [str(p) for p in (args.input, args.clusters) if not p.exists()]
    if missing:
        print("check_removals: missing: " + ", ".join(missing), file=sys.stderr)
        return EXIT_USAGE
    report = check_files(args.input, args.clusters, args.id_field, args.text_field)
    if args.json:
        print(json.dumps(report_dict(report, args.worst), ensure_ascii=False))
    else:
        print(format_report(report, args.worst))
        cases = run_cases(report)
        for case in cases:
            print(f"{'PASS' if case['passed'] else 'FAIL'}  {case['case']}: {case['detail']}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
