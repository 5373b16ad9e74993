"""``neardup dedup`` end to end at scale: wall time, peak memory and quality, against datasketch.

The corpus comes from ``benchmarks/corpus.py`` (``ensure_corpus``, cached under /tmp/neardup-corpora):
``--profile realistic`` (default: new text from word Markov chains per outlet style, invented
furniture, ~10% planted copies of nine kinds, ~3% template notices) or ``--profile stress`` (the old
generator: real paragraphs reused ~100 times in unrelated articles). Both read the shared
development data (../shared/data, or --data; only read) to train or draw from; exit code 2 when it
is missing.

Measured, each as its own process (wall time from spawn to exit; peak memory both as
``ru_maxrss`` of the largest process of its tree, from ``os.wait4``, and as the largest polled sum
of the RSS of the process and all its descendants):

* neardup: ``python -m neardup dedup CORPUS --out KEPT --clusters CLUSTERS --workers W`` for
  each W in --workers, end to end (reading, fingerprinting, candidates, verification, clustering,
  writing both outputs); --repeats runs each, the median time shown;
* datasketch ``MinHashLSH(threshold=T, num_perm=128)`` for T in --thresholds (0.5 and 0.8) on
  lower-cased whitespace word 5-grams, one ``MinHash`` per article, ``query`` then ``insert``;
  clusters = connected components of the query results (union-find), no verification.
  ``--datasketch-style readme`` (default) uses it as its README shows: ``MinHash.update`` per
  shingle with the default SHA-1 hash; ``fast`` is the fastest way we know: xxh32 hashes, one
  ``update_batch``, affine32 permutations shared. Stopped after --datasketch-budget seconds and
  scored on what it reached.
* ``--input FILE`` runs the same on a JSON Lines corpus instead (e.g. reuters21578.jsonl): no
  truth, so only times, memory and removals are meaningful ("false merges" then counts any
  cluster of two documents).

Scores, from CLUSTERS and the truth file: recall of planted copies by kind (the copy is in the same
cluster as its original), false merges (clusters holding documents of two or more stories: two
originals, two notices, ...), and for neardup the losses of ``check_removals.py`` (a removed document
whose word 5-grams are less than half in its representative, Jaccard below 0.5: text lost).

    PYTHONPATH=src python benchmarks/bench_dedup.py [--docs 100000] [--workers 1,2] [--repeats 1]
    nohup env PYTHONPATH=src python benchmarks/bench_dedup.py --docs 1000000 --workers 2 \\
        > /tmp/bench_dedup_1m.log 2>&1 &
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fingerprint import DATA, identity, machine_line, read_jsonl, word_shingles

NUM_PERM, SEED = 128, 1
TARGET_DOCS, TARGET_SECONDS, TARGET_MB = 1_000_000, 180.0, 1536.0


#: Row of each id, for corpora given with --input (whose ids are not n0000123).
_ROWS: dict[str, int] = {}


def doc_number(id: str) -> int:
    if _ROWS:
        return _ROWS[id]
    return int(id[1:])


def number_rows(path: Path) -> int:
    """Map the ids of an --input corpus to rows (first occurrence wins); returns the count."""
    for record in read_jsonl(path):
        _ROWS.setdefault(str(record["id"]), len(_ROWS))
    return len(_ROWS)
PAGE = os.sysconf("SC_PAGE_SIZE")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the corpus ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """Per article (by number): its story's number, its kind."""

    story: np.ndarray
    kind: list[str]

    @property
    def kinds(self) -> list[str]:
        return sorted(set(self.kind) - {"original", "notice"})


def load_corpus(args: argparse.Namespace) -> dict[str, Any]:
    from corpus import ensure_corpus, load_truth

    start = time.perf_counter()
    if args.input is not None:  # a given corpus: no truth, every document its own story
        docs = number_rows(args.input)
        args.docs = docs
        size = sum(len(str(r.get("text", "")).encode("utf-8")) for r in read_jsonl(args.input))
        return {"path": args.input, "truth": None, "plan": Plan(np.arange(docs), ["original"] * docs), "docs": docs,
                "bytes": size, "file_bytes": args.input.stat().st_size, "seconds": time.perf_counter() - start,
                "kinds": Counter({"original": docs})}
    corpus, truth_path = ensure_corpus(args.profile, args.docs, args.seed, args.data)
    truth = load_truth(truth_path)
    story = np.zeros(args.docs, dtype=np.int64)
    kind = [""] * args.docs
    for id, record in truth.items():
        n = doc_number(id)
        story[n] = doc_number(record["story"])
        kind[n] = record["kind"]
    size = sum(len(r["text"].encode("utf-8")) for r in read_jsonl(corpus)) if args.docs <= 200_000 \
        else corpus.stat().st_size
    return {"path": corpus, "truth": truth_path, "plan": Plan(story, kind), "docs": args.docs, "bytes": size,
            "file_bytes": corpus.stat().st_size, "seconds": time.perf_counter() - start,
            "kinds": Counter(kind)}


# -- measured processes ------------------------------------------------------------------------------------


class TreeMonitor(threading.Thread):
    """Polls the summed RSS of a process and all its descendants; keeps the peak."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_mb, self.peak_processes, self.last_mb = 0.0, 0, 0.0
        self.peak_pss_mb = self.peak_anon_mb = 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                total, count, pss, anon = self.sample()
            except Exception:  # a process vanishing mid-walk: try again next tick
                total, count, pss, anon = 0.0, 0, 0.0, 0.0
            self.last_mb = total
            self.peak_mb = max(self.peak_mb, total)
            self.peak_pss_mb = max(self.peak_pss_mb, pss)
            self.peak_anon_mb = max(self.peak_anon_mb, anon)
            self.peak_processes = max(self.peak_processes, count)
            self.halt.wait(self.interval)

    def sample(self) -> tuple[float, int, float, float]:
        """RSS, process count, PSS (shared pages split between their processes) and anonymous memory (not
        file-backed: memory-mapped index files are page cache, counted in RSS of every process mapping them)."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        total, count, pss, anon, todo = 0, 0, 0, 0, [self.pid]
        while todo:
            pid = todo.pop()
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
                count += 1
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                    elif line.startswith("Anonymous:"):
                        anon += int(line.split()[1]) * 1024
            except (OSError, IndexError, ValueError):
                pass
            todo.extend(children.get(pid, []))
        return total / 2**20, count, pss / 2**20, anon / 2**20

    def stop(self) -> None:
        self.halt.set()
        self.join()


def source_digest() -> str:
    """A short digest of the neardup sources a child will import (the tree may change between runs)."""
    import hashlib

    import neardup

    digest = hashlib.sha256()
    for path in sorted(Path(neardup.__file__).parent.rglob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def folder_mb(folder: Path) -> float:
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):  # a file removed while we walk
            total += path.stat().st_size if path.is_file() else 0
    return total / 1e6


def read_position(pid: int, path: Path) -> float | None:
    """Share of ``path`` read so far by process ``pid`` (from /proc fdinfo), None if it is not open."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                pos = int(Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split()[1])
                return pos / max(path.stat().st_size, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def run_measured(command: list[str], stderr_path: Path, label: str, interval: float,
                 tmpdir: Path | None = None, corpus: Path | None = None) -> dict[str, Any]:
    """Run ``command``; wall time, exit code, ru_maxrss / CPU of its tree (wait4) and polled tree RSS.

    With ``tmpdir`` the child's TMPDIR points there (neardup dedup puts its temporary index in it), and the
    progress lines show its size and how far the child has read ``corpus``."""
    log(f"  [{time.strftime('%H:%M:%S')}] {label}: load average {loadavg()}")
    env = dict(os.environ)
    disk = [0.0]
    if tmpdir is not None:
        tmpdir.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(tmpdir)
    with open(stderr_path, "w", encoding="utf-8") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
        monitor = TreeMonitor(process.pid, interval)
        monitor.start()
        reporter_stop = threading.Event()

        def report() -> None:
            while not reporter_stop.wait(60):
                extra = ""
                if tmpdir is not None:
                    size = folder_mb(tmpdir)
                    disk[0] = max(disk[0], size)
                    extra += f", temporary index {size:,.0f} MB"
                if corpus is not None:
                    share = read_position(process.pid, corpus)
                    extra += f", corpus read {share:.0%}" if share is not None else ", corpus not open"
                log(f"    {label}: {time.perf_counter() - start:,.0f} s, tree RSS {monitor.last_mb:,.0f} MB "
                    f"(peak {monitor.peak_mb:,.0f}){extra}, load {loadavg()}")

        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        reporter_stop.set()
        monitor.stop()
    tail = stderr_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-30:]
    result = {"seconds": seconds, "returncode": process.returncode, "maxrss_mb": usage.ru_maxrss / 1024,
              "tree_peak_mb": monitor.peak_mb, "peak_processes": monitor.peak_processes,
              "pss_peak_mb": monitor.peak_pss_mb, "anon_peak_mb": monitor.peak_anon_mb,
              "cpu_seconds": usage.ru_utime + usage.ru_stime, "stderr_tail": tail,
              "disk_mb": disk[0] if tmpdir is not None else None}
    log(f"    {label}: exit {process.returncode}, {seconds:,.1f} s, ru_maxrss {result['maxrss_mb']:,.0f} MB, "
        f"tree peak {monitor.peak_mb:,.0f} MB, cpu {result['cpu_seconds']:,.0f} s")
    if process.returncode != 0:
        log("    stderr tail:\n      " + "\n      ".join(tail))
    return result


def run_neardup(args: argparse.Namespace, work: Path, corpus: Path, workers: int, run: int) -> dict[str, Any]:
    kept, clusters = work / f"kept-w{workers}.jsonl", work / f"clusters-w{workers}.jsonl"
    for path in (kept, clusters):
        path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "neardup", "dedup", str(corpus), "--out", str(kept),
               "--clusters", str(clusters), "--workers", str(workers), "--verbose", "--no-progress"]
    label = f"neardup dedup workers={workers} run {run + 1}/{args.repeats}"
    digest = source_digest()
    result = run_measured(command, work / f"neardup-w{workers}.stderr", label, args.poll,
                          tmpdir=work / f"tmp-w{workers}", corpus=corpus)
    after = source_digest()
    result["source"] = digest if digest == after else f"{digest}->{after}"
    if digest != after:
        log(f"    WARNING: the neardup sources changed during this run ({digest} -> {after})")
    result["command"] = " ".join(command)
    result["kept_path"], result["clusters_path"] = str(kept), str(clusters)
    return result


def neardup_labels(clusters: Path, docs: int) -> tuple[np.ndarray, int]:
    """Cluster label (the representative's number) per document, -1 when absent; and the line count."""
    labels = np.full(docs, -1, dtype=np.int64)
    lines = 0
    with clusters.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            labels[doc_number(record["id"])] = doc_number(record["cluster"])
            lines += 1
    return labels, lines


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def run_datasketch(args: argparse.Namespace, work: Path, corpus: Path, threshold: float) -> dict[str, Any]:
    out = work / f"datasketch-{threshold}"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "datasketch", "--threshold",
               str(threshold), "--corpus", str(corpus), "--out", str(out), "--docs", str(args.docs),
               "--datasketch-budget", str(args.datasketch_budget)] + \
        (["--input", str(args.input)] if args.input is not None else []) + ["--datasketch-style", args.datasketch_style]
    result = run_measured(command, work / f"datasketch-{threshold}.stderr", f"datasketch T={threshold}", args.poll)
    if result["returncode"] == 0:
        result.update(json.loads(Path(f"{out}.json").read_text()))
        result["labels"] = np.load(f"{out}.npy")
    return result


def child_datasketch(args: argparse.Namespace) -> int:
    import xxhash
    from datasketch import MinHash, MinHashLSH

    hash32 = xxhash.xxh32_intdigest
    permutations = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32", hashfunc=identity).permutations
    lsh = MinHashLSH(threshold=args.threshold, num_perm=NUM_PERM)
    parent = list(range(args.docs))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    start = last = time.perf_counter()
    inserted, size, candidates, stopped, checked = 0, 0, 0, False, False
    with lsh.insertion_session() as session:
        for record in read_jsonl(Path(args.corpus)):
            number, text = doc_number(record["id"]), record["text"]
            if args.datasketch_style == "readme":  # as datasketch's README shows: update() per shingle, SHA-1
                sketch = MinHash(num_perm=NUM_PERM)
                for shingle in word_shingles(text):
                    sketch.update(shingle.encode("utf8"))
            else:  # the fastest way we know: xxh32 hashes, one update_batch, affine32 permutations shared
                sketch = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32", hashfunc=identity,
                                 permutations=permutations)
                sketch.update_batch([hash32(s.encode("utf-8")) for s in word_shingles(text)])
            for other in lsh.query(sketch):
                candidates += 1
                a, b = find(number), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            session.insert(number, sketch, check_duplication=False)
            if not checked:  # the query-before-insert scheme needs inserts visible at once
                assert number in lsh.query(sketch), "datasketch insertion_session buffered an in-memory insert"
                checked = True
            inserted += 1
            size += len(text.encode("utf-8"))
            if inserted % 1000 == 0:
                now = time.perf_counter()
                if now - last > 60:
                    last = now
                    log(f"    datasketch T={args.threshold}: {inserted:,} docs, {inserted / (now - start):,.0f} docs/s")
                if now - start > args.datasketch_budget:
                    stopped = True
                    break
    seconds = time.perf_counter() - start
    labels = np.full(args.docs, -1, dtype=np.int64)
    labels[:inserted] = [find(i) for i in range(inserted)]
    np.save(f"{args.out}.npy", labels)
    Path(f"{args.out}.json").write_text(json.dumps(
        {"inner_seconds": seconds, "documents": inserted, "bytes": size, "stopped": stopped,
         "candidates": candidates, "bands_rows": [lsh.b, lsh.r]}))
    return 0


# -- scores --------------------------------------------------------------------------------------------------


def score(labels: np.ndarray, plan: Plan, limit: int) -> dict[str, Any]:
    """Recall of planted copies by kind, and false merges (clusters holding two stories), on the first
    ``limit`` documents."""
    labels, story = labels[:limit], plan.story[:limit]
    kind = np.array(plan.kind[:limit])
    out: dict[str, Any] = {"missing": int((labels < 0).sum()),
                           "clusters": int(np.unique(labels[labels >= 0]).size)}
    copies = np.flatnonzero(story != np.arange(limit))
    hit = (labels[copies] >= 0) & (labels[copies] == labels[story[copies]])
    out["recall_found"], out["recall_total"] = int(hit.sum()), int(copies.size)
    out["recall"] = hit.mean() if copies.size else float("nan")
    for name in plan.kinds:
        mine = kind[copies] == name
        out[f"recall_{name}"] = f"{int(hit[mine].sum())}/{int(mine.sum())}"
    placed = labels >= 0
    pairs = np.unique(np.stack([labels[placed], story[placed]], axis=1), axis=0)  # distinct (cluster, story)
    _, counts = np.unique(pairs[:, 0], return_counts=True)
    merged = counts[counts >= 2]
    out["false_clusters"] = int(merged.size)
    out["false_pairs"] = int((merged * (merged - 1) // 2).sum())
    out["stories"] = int(np.unique(story).size)
    out["largest"] = int(np.unique(labels[placed], return_counts=True)[1].max()) if placed.any() else 0
    return out


def losses(corpus: Path, clusters: Path) -> dict[str, Any]:
    from check_removals import check_files

    report = check_files(corpus, clusters)
    return {"removed": len(report.removals), "losses": len(report.losses), "loss_pct": report.loss_percent}


# -- report --------------------------------------------------------------------------------------------------


ROWS = (  # key, label, format, target
    ("docs", "articles processed", "{:,.0f}", ""),
    ("runs", "runs (median time shown)", "{:.0f}", ""),
    ("seconds", "wall s (spawn to exit)", "{:,.1f}", "1M: <= 180"),
    ("per_1m", "  linear extrapolation to 1M, s", "{:,.0f}", ""),
    ("docs_s", "articles/s", "{:,.0f}", ""),
    ("mb_s", "MB/s of text", "{:.2f}", ""),
    ("cpu", "CPU s (user+sys, process tree)", "{:,.0f}", ""),
    ("cpu_wall", "  CPU / wall", "{:.2f}", ""),
    ("tree_mb", "peak RSS MB, sum over process tree (polled)", "{:,.0f}", "1M: <= 1536"),
    ("pss_mb", "  peak PSS MB, summed (shared pages split)", "{:,.0f}", ""),
    ("anon_mb", "  peak anonymous MB, summed (no mapped files)", "{:,.0f}", ""),
    ("maxrss_mb", "peak RSS MB, largest process (ru_maxrss)", "{:,.0f}", ""),
    ("processes", "  processes in the tree (max)", "{:.0f}", ""),
    ("disk_mb", "temporary index MB (largest of 60 s samples)", "{:,.0f}", ""),
    ("clusters", "clusters", "{:,.0f}", ""),
    ("kept", "  lines in KEPT", "{:,.0f}", ""),
    ("missing", "articles absent from the clusters", "{:,.0f}", "0"),
    ("recall", "recall of planted copies", "{:.4f}", ""),
    ("recall_of", "  found / planted", "{}", ""),
    *[(f"recall_{k}", f"  {k}", "{}", "") for k in ("full", "exact", "truncated", "extended", "embedded", "dropped",
                                                     "merged", "light-edit", "flash", "byline")],
    ("stories", "stories (originals and notices)", "{:,.0f}", ""),
    ("false_clusters", "false merges: clusters holding >= 2 stories", "{:,.0f}", "0"),
    ("false_pairs", "  pairs of stories sharing a cluster", "{:,.0f}", ""),
    ("largest", "largest cluster", "{:,.0f}", ""),
    ("removed", "removed documents", "{:,.0f}", ""),
    ("losses", "  losses (check_removals: 5-gram containment and Jaccard < 0.5)", "{:,.0f}", ""),
    ("loss_pct", "  losses, % of removals", "{:.2f}", "<= 0.5"),
    ("source", "neardup sources (sha256 of src/neardup/*.py)", "{}", ""),
)


def column(runs: list[dict[str, Any]], labels: np.ndarray | None, plan: Plan, docs: int, nbytes: float,
           kept: int | None) -> dict[str, Any]:
    seconds = statistics.median(r["seconds"] for r in runs)
    col: dict[str, Any] = {"docs": docs, "runs": len(runs), "seconds": seconds, "per_1m": seconds * TARGET_DOCS / docs,
                           "docs_s": docs / seconds, "mb_s": nbytes / 1e6 / seconds,
                           "cpu": statistics.median(r["cpu_seconds"] for r in runs),
                           "tree_mb": max(r["tree_peak_mb"] for r in runs),
                           "pss_mb": max(r.get("pss_peak_mb", float("nan")) for r in runs),
                           "anon_mb": max(r.get("anon_peak_mb", float("nan")) for r in runs),
                           "maxrss_mb": max(r["maxrss_mb"] for r in runs),
                           "processes": max(r["peak_processes"] for r in runs), "kept": kept,
                           "source": ",".join(sorted({r["source"] for r in runs if "source" in r})) or None,
                           "disk_mb": max((r["disk_mb"] for r in runs if r.get("disk_mb")), default=None)}
    col["cpu_wall"] = col["cpu"] / seconds
    if labels is not None:
        scores = score(labels, plan, docs)
        col.update(scores)
        col["recall_of"] = f"{scores['recall_found']}/{scores['recall_total']}"
    return col


def _fmt(fmt: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "n/a"
    return fmt.format(value)


def print_table(columns: list[tuple[str, dict[str, Any]]]) -> None:
    width = max(15, *(len(n) + 2 for n, _ in columns))
    print(f"{'metric':<46}" + "".join(f"{n:>{width}}" for n, _ in columns) + "  target")
    for key, label, fmt, target in ROWS:
        print(f"{label:<46}" + "".join(f"{_fmt(fmt, c.get(key)):>{width}}" for _, c in columns)
              + (f"  {target}" if target else ""))


def print_partial(columns: list[tuple[str, dict[str, Any]]]) -> None:
    """The table so far, so that a long run that is cut short still leaves its finished results in the log."""
    print(f"\n-- results so far ({time.strftime('%H:%M:%S')}, load average {loadavg()}) --")
    print_table(columns)
    print(flush=True)


def verdicts(columns: list[tuple[str, dict[str, Any]]], docs: int) -> list[str]:
    out = []
    for name, col in columns:
        if not name.startswith("neardup"):
            continue
        if docs >= TARGET_DOCS:
            time_ok = "PASS" if col["seconds"] <= TARGET_SECONDS else "FAIL"
            mem_ok = "PASS" if col["tree_mb"] <= TARGET_MB else "FAIL"
            out.append(f"{name}: 1M articles in {col['seconds']:,.0f} s ({time_ok}, target <= 180 s), "
                       f"peak tree RSS {col['tree_mb']:,.0f} MB ({mem_ok}, target <= 1536 MB; PSS "
                       f"{col['pss_mb']:,.0f} MB, anonymous {col['anon_mb']:,.0f} MB)")
        else:
            out.append(f"{name}: measured at {docs:,} articles, not 1M: {col['seconds']:,.1f} s, "
                       f"{col['tree_mb']:,.0f} MB; a linear extrapolation gives {col['per_1m']:,.0f} s at 1M "
                       f"(memory is not extrapolated; run --docs 1000000 for the targets)")
    return out


# -- main ------------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the shared development data (read only)")
    parser.add_argument("--docs", type=int, default=100_000, help="synthetic articles (default 100,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", choices=("realistic", "stress"), default="realistic",
                        help="corpus profile of benchmarks/corpus.py (default realistic)")
    parser.add_argument("--input", type=Path, help="a JSON Lines corpus instead (e.g. ../shared/data/"
                        "reuters21578.jsonl): timings and losses, no recall (no truth)")
    parser.add_argument("--workers", default="1,2", help="comma-separated --workers values for neardup dedup")
    parser.add_argument("--repeats", type=int, default=1, help="neardup runs per worker count (median time shown)")
    parser.add_argument("--thresholds", default="0.5,0.8", help="datasketch MinHashLSH thresholds ('' for none)")
    parser.add_argument("--datasketch-budget", type=float, default=600.0,
                        help="seconds per datasketch run before it stops and is scored on what it reached")
    parser.add_argument("--datasketch-style", choices=("readme", "fast"), default="readme",
                        help="readme: MinHash.update per shingle with the default SHA-1 hash, as datasketch's README "
                             "shows (default); fast: xxh32 + update_batch + shared affine32 permutations")
    parser.add_argument("--datasketch-first", action="store_true",
                        help="run datasketch before neardup (so that a long neardup run cut short leaves them)")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between RSS samples of a process tree")
    parser.add_argument("--workdir", type=Path, help="where to create the temporary folder (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (corpus and outputs)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threshold", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.child == "datasketch":
        if args.input is not None:
            number_rows(args.input)
        return child_datasketch(args)
    from corpus import missing_data

    missing = missing_data(args.data, args.profile)
    if missing:
        print("bench_dedup: this benchmark reads the shared development data (only reads it; it is not shipped "
              "with neardup);\nmissing: " + ", ".join(str(p) for p in missing)
              + "\n(point --data at the folder holding them)", file=sys.stderr)
        return 2
    print(machine_line(), flush=True)
    print(f"load average at start: {loadavg()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="neardup-bench-dedup-", dir=args.workdir))
    try:
        return run_all(args, work)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_sketches(args: argparse.Namespace, work: Path, corpus_path: Path, plan: Plan,
                 columns: list[tuple[str, dict[str, Any]]], failures: list[str],
                 sketches: list[dict[str, Any]]) -> None:
    for threshold in [float(t) for t in args.thresholds.split(",") if t.strip()]:
        result = run_datasketch(args, work, corpus_path, threshold)
        if result["returncode"] != 0:
            failures.append(f"datasketch T={threshold} exit {result['returncode']}:\n    "
                            + "\n    ".join(result["stderr_tail"]))
            continue
        result["threshold"] = threshold
        sketches.append(result)
        col = column([result], result["labels"], plan, result["documents"], result["bytes"], None)
        columns.append((f"datasketch T={threshold}" + (" fast" if args.datasketch_style == "fast" else ""), col))
        print_partial(columns)


def run_all(args: argparse.Namespace, work: Path) -> int:
    log(f"  the {args.profile} corpus of {args.docs:,} articles (benchmarks/corpus.py, cached) ...")
    corpus = load_corpus(args)
    corpus_path = corpus["path"]
    plan, docs, nbytes = corpus["plan"], corpus["docs"], corpus["bytes"]
    print(f"corpus: {corpus_path} ({args.profile}), {docs:,} articles, {nbytes / 1e6:,.1f} MB "
          f"({'text' if docs <= 200_000 else 'JSONL file'}), kinds {dict(corpus['kinds'])}, seed={args.seed}; "
          f"ready in {corpus['seconds']:.0f} s", flush=True)
    columns: list[tuple[str, dict[str, Any]]] = []
    failures: list[str] = []
    commands: list[str] = []
    sketches: list[dict[str, Any]] = []
    if args.datasketch_first:
        run_sketches(args, work, corpus_path, plan, columns, failures, sketches)
    for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
        runs = [run_neardup(args, work, corpus_path, workers, run) for run in range(args.repeats)]
        commands.append(runs[0]["command"])
        good = [r for r in runs if r["returncode"] == 0]
        for r in runs:
            if r["returncode"] != 0:
                failures.append(f"neardup workers={workers} exit {r['returncode']}:\n    "
                                + "\n    ".join(r["stderr_tail"]))
        if not good:
            continue
        labels, lines = neardup_labels(Path(good[-1]["clusters_path"]), docs)
        kept = count_lines(Path(good[-1]["kept_path"]))
        summary = next((line for line in good[-1]["stderr_tail"] if "dedup:" in line), "")
        print(f"neardup workers={workers}: {lines:,} lines in CLUSTERS; {summary}", flush=True)
        col = column(good, labels, plan, docs, nbytes, kept)
        col.update(losses(corpus_path, Path(good[-1]["clusters_path"])))
        columns.append((f"neardup w={workers}", col))
        print_partial(columns)
    if not args.datasketch_first:
        run_sketches(args, work, corpus_path, plan, columns, failures, sketches)
    print(f"load average at end: {loadavg()}", flush=True)
    print()
    print_table(columns)
    for result in sketches:
        size = "all articles" if not result["stopped"] else \
            f"STOPPED at the {args.datasketch_budget:.0f} s budget after {result['documents']:,} of {docs:,} articles"
        print(f"datasketch T={result['threshold']}: bands x rows = {result['bands_rows'][0]} x "
              f"{result['bands_rows'][1]}, {result['candidates']:,} candidate pairs, in memory, no verification; "
              f"{size}")
    for line in verdicts(columns, docs):
        print(line)
    print("peak RSS: 'sum over process tree' polls /proc every "
          f"{args.poll} s (may miss a short spike; pages shared after fork and pages of memory-mapped files count "
          "in every process mapping them, so an upper bound); PSS splits shared pages between their processes; "
          "anonymous excludes file-backed pages (page cache of mapped index files, reclaimable); ru_maxrss is "
          "exact for the single largest process, mapped files included")
    for command in commands:
        print(f"command: {command}")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
