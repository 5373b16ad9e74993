"""The Spark engine against the local one: identical CLUSTERS on real corpora, and cost at scale.

1. **Equality** — ``neardup dedup`` (local) and ``neardup dedup --engine spark`` (the Spark engine,
   ``local[2]``) on ``syndication-dev.jsonl`` and ``reuters21578.jsonl`` from ``../shared/data``
   (``--data``; only read), for each ``--keep`` policy given: the two CLUSTERS files compared byte
   for byte, and if they differ, line by line (partition into clusters, representatives, kinds,
   scores).
2. **Scale** — both engines end to end on a generated corpus (``--corpus``, default the 1M-article
   realistic corpus of ``benchmarks/corpus.py`` under /tmp/neardup-corpora; 100k with
   ``--corpus .../realistic-100000-s7-v1.jsonl``): wall time, CPU, peak RSS of every process of the
   tree by role (the Python driver, the JVM, Spark's Python workers) and the largest summed RSS,
   seconds and shuffle bytes (written, read) per stage of the Spark run (its ``--json`` summary,
   from Spark's REST API), and the CLUSTERS of the two compared.

Times on a shared machine are noisy; the load average is printed before each run.

    PYTHONPATH=src python benchmarks/bench_spark.py [--only equality,scale] [--keep first,longest]
    nohup env PYTHONPATH=src python benchmarks/bench_spark.py --only scale \\
        --corpus /tmp/neardup-corpora/realistic-1000000-s7-v1.jsonl > /tmp/bench_spark_1m.log 2>&1 &

Exit code 2 when an input is missing, 1 when the engines disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CORPORA = ("syndication-dev", "reuters21578")
SCALE = Path("/tmp/neardup-corpora/realistic-1000000-s7-v1.jsonl")
PAGE = os.sysconf("SC_PAGE_SIZE")
#: Spark settings of the scale run on a 2-core, 24 GB machine shared with others.
SPARK_CONF = ("spark.driver.memory=6g", "spark.ui.enabled=true",
              "spark.sql.execution.arrow.maxRecordsPerBatch=2000")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- measured processes --------------------------------------------------------------------------------------


class Peaks(threading.Thread):
    """Polls RSS of a process and its descendants: the peak of each process, by role, and of the sum."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.by_pid: dict[int, tuple[str, float]] = {}
        self.sum_peak = 0.0
        self.errors = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.sample()
            except Exception as err:
                self.errors += 1 if err else 0
            self.halt.wait(self.interval)

    def sample(self) -> None:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry))
        total, todo = 0.0, [self.pid]
        while todo:
            pid = todo.pop()
            try:
                rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, ValueError, IndexError):
                continue
            total += rss
            role = role_of(pid, command, self.pid)
            self.by_pid[pid] = (role, max(rss, self.by_pid.get(pid, (role, 0.0))[1]))
            todo.extend(children.get(pid, []))
        self.sum_peak = max(self.sum_peak, total)

    def roles(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for role, peak in self.by_pid.values():
            item = out.setdefault(role, {"processes": 0, "peak_mb": 0.0})
            item["processes"] += 1
            item["peak_mb"] = max(item["peak_mb"], round(peak, 1))
        return out

    def stop(self) -> None:
        self.halt.set()
        self.join()


def role_of(pid: int, command: str, root: int) -> str:
    if pid == root:
        return "driver (python)"
    if "java" in command.split(" ")[0]:
        return "jvm (spark)"
    if "pyspark" in command or "daemon" in command or "worker" in command:
        return "python workers"
    return f"other ({os.path.basename(command.split(' ')[0])})"


def measured(command: list[str], label: str, stderr: Path) -> dict[str, Any]:
    log(f"  [{time.strftime('%H:%M:%S')}] {label}: load average {loadavg()}")
    with open(stderr, "w", encoding="utf-8") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, env=dict(os.environ))
        peaks = Peaks(process.pid)
        peaks.start()
        stdout = process.stdout.read() if process.stdout else b""
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        peaks.stop()
    code = os.waitstatus_to_exitcode(status)
    summary: dict[str, Any] = {}
    for line in stdout.decode(errors="replace").splitlines():
        if line.startswith("{"):
            summary = json.loads(line)
    result = {"label": label, "seconds": round(seconds, 1), "returncode": code,
              "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), "children_maxrss_mb": None,
              "roles": peaks.roles(), "tree_peak_mb": round(peaks.sum_peak, 1), "summary": summary}
    log(f"    {label}: {seconds:,.1f} s, exit {code}, tree peak {peaks.sum_peak:,.0f} MB, "
        + ", ".join(f"{r} {v['peak_mb']:,.0f} MB ({v['processes']})" for r, v in peaks.roles().items()))
    if code != 0:
        log("    " + "\n    ".join(stderr.read_text(errors="replace").strip().splitlines()[-15:]))
    return result


def local_command(corpus: Path, kept: Path, clusters: Path, keep: str) -> list[str]:
    return [sys.executable, "-m", "neardup", "dedup", str(corpus), "--out", str(kept), "--clusters", str(clusters),
            "--keep", keep, "--workers", "2", "--no-progress", "--json", "-v"]


def spark_command(corpus: Path, kept: Path, clusters: Path, keep: str, conf: list[str],
                  partitions: int | None) -> list[str]:
    command = [sys.executable, "-m", "neardup", "dedup", str(corpus), "--engine", "spark", "--out", str(kept),
               "--clusters", str(clusters), "--keep", keep, "--spark-master", "local[2]", "--no-progress",
               "--json", "-v"]
    for item in conf:
        command += ["--spark-conf", item]
    if partitions:
        command += ["--spark-partitions", str(partitions)]
    return command


# -- comparing CLUSTERS -------------------------------------------------------------------------------------


def compare(local: Path, spark: Path) -> dict[str, Any]:
    """Byte equality, else what differs: lines, the partition, representatives, kinds, scores."""
    a, b = local.read_bytes(), spark.read_bytes()
    rows_a = [json.loads(line) for line in a.splitlines()]
    rows_b = [json.loads(line) for line in b.splitlines()]
    out: dict[str, Any] = {"lines": [len(rows_a), len(rows_b)], "identical_bytes": a == b}
    by_a, by_b = {r["id"]: r for r in rows_a}, {r["id"]: r for r in rows_b}

    def partition(rows: dict[str, dict]) -> set[frozenset[str]]:
        groups: dict[str, set[str]] = {}
        for r in rows.values():
            groups.setdefault(r["cluster"], set()).add(r["id"])
        return {frozenset(g) for g in groups.values()}

    out["same_ids_in_order"] = [r["id"] for r in rows_a] == [r["id"] for r in rows_b]
    out["same_partition"] = partition(by_a) == partition(by_b)
    out["same_representatives"] = {r["id"] for r in rows_a if r["representative"]} == \
        {r["id"] for r in rows_b if r["representative"]}
    out["different_lines"] = sum(by_a.get(k) != by_b.get(k) for k in set(by_a) | set(by_b))
    out["different_kinds"] = sum(by_a[k]["kind"] != by_b[k]["kind"] for k in set(by_a) & set(by_b))
    out["clusters"] = len(partition(by_a))
    out["removed_by_kind"] = dict(Counter(r["kind"] for r in rows_a if not r["representative"]))
    return out


# -- the two parts -------------------------------------------------------------------------------------------


def equality(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    results = []
    for name in args.corpora.split(","):
        corpus = args.data / f"{name}.jsonl"
        for keep in args.keep.split(","):
            files = {engine: (work / f"{name}-{keep}-{engine}.kept.jsonl",
                              work / f"{name}-{keep}-{engine}.clusters.jsonl") for engine in ("local", "spark")}
            local = measured(local_command(corpus, *files["local"], keep), f"{name} {keep} local",
                             work / f"{name}-{keep}-local.err")
            spark = measured(spark_command(corpus, *files["spark"], keep, list(args.spark_conf_small), 4),
                             f"{name} {keep} spark", work / f"{name}-{keep}-spark.err")
            item = {"corpus": name, "keep": keep, "local_seconds": local["seconds"], "spark_seconds": spark["seconds"]}
            if local["returncode"] == 0 and spark["returncode"] == 0:
                item["clusters"] = compare(files["local"][1], files["spark"][1])
                item["kept_identical_bytes"] = files["local"][0].read_bytes() == files["spark"][0].read_bytes()
            else:
                item["error"] = "a run failed"
            log(f"  {name} {keep}: {json.dumps(item)}")
            results.append(item)
    return results


def scale(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    corpus = args.corpus
    out: dict[str, Any] = {"corpus": str(corpus), "bytes": corpus.stat().st_size}
    files = {engine: (work / f"scale-{engine}.kept.jsonl", work / f"scale-{engine}.clusters.jsonl")
             for engine in ("local", "spark")}
    if "local" in args.engines:
        out["local"] = measured(local_command(corpus, *files["local"], args.scale_keep), "scale local",
                                work / "scale-local.err")
    if "spark" in args.engines:
        out["spark"] = measured(spark_command(corpus, *files["spark"], args.scale_keep, list(args.spark_conf),
                                              args.partitions), "scale spark", work / "scale-spark.err")
    if all(out.get(e, {}).get("returncode") == 0 for e in ("local", "spark")):
        out["clusters"] = compare(files["local"][1], files["spark"][1])
    return out


def report(results: dict[str, Any]) -> None:
    print("\n== equality: CLUSTERS of the local engine and the Spark engine (local[2], 4 partitions)")
    print("corpus | keep | lines | identical bytes | same partition | same representatives | different lines | "
          "KEPT identical | local s | spark s")
    for item in results.get("equality", []):
        c = item.get("clusters", {})
        print(f"{item['corpus']} | {item['keep']} | {c.get('lines')} | {c.get('identical_bytes')} | "
              f"{c.get('same_partition')} | {c.get('same_representatives')} | {c.get('different_lines')} | "
              f"{item.get('kept_identical_bytes')} | {item['local_seconds']} | {item['spark_seconds']}")
    s = results.get("scale")
    if not s:
        return
    print(f"\n== scale: {s['corpus']} ({s['bytes'] / 1e6:,.0f} MB)")
    for engine in ("local", "spark"):
        if engine in s:
            r = s[engine]
            roles = ", ".join(f"{k}: {v['peak_mb']:,.0f} MB peak ({v['processes']} processes)"
                              for k, v in r["roles"].items())
            print(f"{engine}: {r['seconds']:,.1f} s wall, {r['cpu_seconds']:,.1f} s CPU (driver), exit "
                  f"{r['returncode']}, tree peak {r['tree_peak_mb']:,.0f} MB; {roles}")
            summary = r.get("summary", {})
            if summary:
                print(f"  {summary.get('documents'):,} documents, {summary.get('clusters'):,} clusters, "
                      f"{summary.get('removed'):,} removed {summary.get('removed_by_kind')}")
                seconds = summary.get("seconds", {}).items()
                print("  seconds per stage: " + ", ".join(f"{k} {v:,.1f}" for k, v in seconds))
            for stage, value in (summary.get("shuffle") or {}).items():
                print(f"  shuffle {stage}: written {value['write'] / 1e6:,.1f} MB, read {value['read'] / 1e6:,.1f} MB")
    if "clusters" in s:
        print(f"CLUSTERS compared: {json.dumps(s['clusters'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="equality,scale", help="equality, scale or both (default)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--keep", default="first,longest,earliest", help="policies of the equality runs")
    parser.add_argument("--corpus", type=Path, default=SCALE, help="the corpus of the scale runs")
    parser.add_argument("--scale-keep", default="first")
    parser.add_argument("--engines", default="local,spark", help="engines of the scale runs")
    parser.add_argument("--partitions", type=int, default=32, help="--spark-partitions of the scale run (32)")
    parser.add_argument("--spark-conf", action="append", default=None, metavar="KEY=VALUE")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    args.spark_conf = args.spark_conf or list(SPARK_CONF)
    args.spark_conf_small = ("spark.driver.memory=2g", "spark.ui.enabled=true")
    parts = set(args.only.split(","))
    missing = [str(args.data / f"{n}.jsonl") for n in args.corpora.split(",") if not (args.data / f"{n}.jsonl").exists()
               and "equality" in parts] + ([str(args.corpus)] if "scale" in parts and not args.corpus.exists() else [])
    if missing:
        log(f"missing: {', '.join(missing)} (generate the scale corpus with benchmarks/corpus.py)")
        return 2
    log(f"machine: {os.cpu_count()} cores, load {loadavg()}, python {sys.version.split()[0]}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-spark-", dir=args.workdir) as folder:
        work = Path(folder)
        if "equality" in parts:
            results["equality"] = equality(args, work)
        if "scale" in parts:
            results["scale"] = scale(args, work)
    report(results)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    agree = all(i.get("clusters", {}).get("identical_bytes") for i in results.get("equality", []))
    if "scale" in results and "clusters" in results["scale"]:
        agree = agree and results["scale"]["clusters"]["identical_bytes"]
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
