"""Load test of ``neardup serve`` on loopback: concurrent readers while one client adds, then kill -9.

What it does
------------
1. The corpus: ``corpus.ensure_corpus("realistic", --docs, seed=7)`` (cached under
   /tmp/neardup-corpora; generating it reads ../shared/data). The index: ``python -m neardup
   index IDX CORPUS`` in a subprocess (timed), kept in --workdir and reused when it holds --docs
   documents (``--rebuild`` to build it again). Each run adds documents to it, so a reused index
   grows a little from run to run; the figures say how many documents it held.
2. The server: ``neardup.server.serve(IDX, port=0, writable=True, readers=R)`` -- what ``neardup
   serve IDX --writable --port 0`` runs -- in a subprocess (one process: --readers reader threads,
   0 for the default, and one writer thread).
3. For each client count in --clients (default 1, 4, 16): that many query clients, each a thread
   of this process with its own keep-alive HTTP connection, send ``POST /query`` with the text of a
   corpus article (drawn at random, seeded; ~10% are planted copies) and ``top`` 10, back to back,
   for --seconds, after --warmup seconds not counted; meanwhile one more client adds documents
   with ``POST /documents`` in batches of --add-batch (new ids; texts are corpus articles with a
   new byline, so each add is a copy of an indexed story). Latency is measured by the client from
   sending the request to the last byte of the answer; every answer is checked (status 200,
   parsed, a list of matches); any other answer or a failed connection is an error.
4. Afterwards every acknowledged document is looked up (``Index.open`` in this process, and
   ``GET /documents/{id}`` for a sample).
5. Kill -9: adds and queries run again, the server is killed with SIGKILL while requests are in
   flight, restarted (time to its first answer measured), and every document acknowledged before
   the kill must be in the index (``Index.open``) and served by the new server.

The machine is shared and has 2 cores: the load generator runs on the same cores as the server,
so at 16 clients part of the latency is the clients' own CPU. The script prints the load average
and the busiest other processes before and after, to say what else ran.

    PYTHONPATH=src python benchmarks/bench_serve.py [--docs 100000] [--clients 1,4,16] [--seconds 20]
        [--readers 2] [--workdir /tmp/neardup-bench-serve] [--rebuild] [--json benchmarks/out/bench_serve.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

from corpus import ensure_corpus  # noqa: E402
from neardup import Index  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the server process -----------------------------------------------------------------------------------

class Server:
    """``neardup serve`` in a subprocess; its address is read from its first line on stderr."""

    def __init__(self, index: Path, readers: int) -> None:
        self.index, self.readers = index, readers
        self.process: subprocess.Popen[str] | None = None
        self.host, self.port = "127.0.0.1", 0

    def start(self, timeout: float = 120) -> float:
        """Start it; seconds until it answered /health."""
        started = time.monotonic()
        # neardup.server.serve() as `neardup serve INDEX --writable --port 0` calls it, with --readers
        code = ("import sys; from neardup.cli.main import Console; from neardup.service.app import serve; "
                "serve(sys.argv[1], port=0, writable=True, readers=int(sys.argv[2]) or None, console=Console())")
        command = [sys.executable, "-c", code, str(self.index), str(self.readers)]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                        env=ENV)
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        found = re.search(r"at http://([^:/\s]+):(\d+)/", line)
        if not found:
            raise RuntimeError(f"the server did not start: {line}{self.process.stderr.read()}")
        self.host, self.port = found.group(1), int(found.group(2))
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # drain its log
        while time.monotonic() - started < timeout:
            try:
                status, _ = request(self.connection(), "GET", "/health")
                if status == 200:
                    return time.monotonic() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the server did not answer /health")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=120)

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def request(connection: http.client.HTTPConnection, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    connection.request(method, path, body=data, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    return response.status, json.loads(payload) if payload else None


# -- the clients --------------------------------------------------------------------------------------------

@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    add_latencies: list[float] = field(default_factory=list)


def query_client(server: Server, texts: list[str], seed: int, measure_from: float, until: float, tally: Tally,
                 lock: threading.Lock) -> None:
    rng = random.Random(seed)
    connection = server.connection()
    mine: list[float] = []
    errors: list[str] = []
    while (now := time.monotonic()) < until:
        text = texts[rng.randrange(len(texts))]
        started = time.perf_counter()
        try:
            status, body = request(connection, "POST", "/query", {"text": text, "top": 10})
        except (OSError, http.client.HTTPException, ValueError) as err:
            errors.append(f"query: {type(err).__name__}: {err}")
            connection.close()
            connection = server.connection()
            continue
        elapsed = time.perf_counter() - started
        if status != 200 or not isinstance(body.get("matches"), list):
            errors.append(f"query: {status} {str(body)[:200]}")
        elif now >= measure_from:
            mine.append(elapsed)
    connection.close()
    with lock:
        tally.latencies.extend(mine)
        tally.errors.extend(errors)


def add_client(server: Server, records: list[dict[str, Any]], prefix: str, batch: int, until: float, tally: Tally,
               lock: threading.Lock, stop: threading.Event | None = None) -> None:
    connection = server.connection()
    number = 0
    while time.monotonic() < until and not (stop is not None and stop.is_set()):
        documents = []
        for _ in range(batch):
            source = records[number % len(records)]
            documents.append({"id": f"{prefix}-{number:06d}", "text": f"By Bench Writer\n{source['text']}",
                              "source": "Bench Outlet", "date": source.get("date")})
            number += 1
        started = time.perf_counter()
        try:
            status, body = request(connection, "POST", "/documents", {"documents": documents})
        except (OSError, http.client.HTTPException, ValueError) as err:
            if stop is None:
                with lock:
                    tally.errors.append(f"add: {type(err).__name__}: {err}")
            return
        elapsed = time.perf_counter() - started
        with lock:
            if status == 200 and body["added"] == len(documents):
                tally.acknowledged.extend(d["id"] for d in documents)
                tally.add_latencies.append(elapsed)
            else:
                tally.errors.append(f"add: {status} {str(body)[:200]}")
    connection.close()


def run_phase(server: Server, clients: int, texts: list[str], records: list[dict[str, Any]], args: argparse.Namespace,
              prefix: str) -> dict[str, Any]:
    tally, lock = Tally(), threading.Lock()
    start = time.monotonic()
    measure_from, until = start + args.warmup, start + args.warmup + args.seconds
    cpu_before = server.cpu_seconds()
    threads = [threading.Thread(target=query_client, args=(server, texts, 1000 * clients + i, measure_from, until,
                                                           tally, lock)) for i in range(clients)]
    if args.add_batch:
        threads.append(threading.Thread(target=add_client, args=(server, records, prefix, args.add_batch, until, tally,
                                                                 lock)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - start
    lat = sorted(tally.latencies)
    return {
        "clients": clients, "queries": len(lat), "queries_per_s": len(lat) / args.seconds,
        "p50_ms": 1e3 * percentile(lat, 0.50), "p90_ms": 1e3 * percentile(lat, 0.90),
        "p99_ms": 1e3 * percentile(lat, 0.99), "max_ms": 1e3 * (lat[-1] if lat else float("nan")),
        "errors": len(tally.errors), "error_examples": tally.errors[:5],
        "added": len(tally.acknowledged), "adds_per_s": len(tally.acknowledged) / wall,
        "add_p50_ms": 1e3 * percentile(sorted(tally.add_latencies), 0.5),
        "add_max_ms": 1e3 * (max(tally.add_latencies) if tally.add_latencies else float("nan")),
        "server_cpu_s": server.cpu_seconds() - cpu_before, "wall_s": wall,
        "acknowledged": tally.acknowledged,
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


# -- checks ---------------------------------------------------------------------------------------------------

def missing_from_index(index: Path, ids: list[str]) -> list[str]:
    with Index.open(str(index)) as reopened:
        return [x for x in ids if x not in reopened]


def missing_from_server(server: Server, ids: list[str], sample: int = 200) -> list[str]:
    connection = server.connection()
    chosen = ids if len(ids) <= sample else random.Random(5).sample(ids, sample)
    missing = [x for x in chosen if request(connection, "GET", f"/documents/{x}")[0] != 200]
    connection.close()
    return missing


def kill_test(server: Server, texts: list[str], records: list[dict[str, Any]], args: argparse.Namespace,
              prefix: str) -> dict[str, Any]:
    """Adds and queries in flight, SIGKILL, restart, then every acknowledged add must be there."""
    tally, lock, stop = Tally(), threading.Lock(), threading.Event()
    until = time.monotonic() + 600
    adder = threading.Thread(target=add_client,
                             args=(server, records, prefix, args.add_batch, until, tally, lock, stop))
    readers = [threading.Thread(target=query_client, args=(server, texts, 77 + i, 0.0, time.monotonic() + 4, Tally(),
                                                           lock)) for i in range(2)]
    adder.start()
    for thread in readers:
        thread.start()
    deadline = time.monotonic() + 60
    while len(tally.acknowledged) < 10 * args.add_batch and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random(3).uniform(0.0, 0.3))  # somewhere inside a later add
    server.kill()
    stop.set()
    adder.join(timeout=60)
    for thread in readers:
        thread.join(timeout=60)
    acknowledged = list(tally.acknowledged)  # everything acknowledged before the connection died
    restart = server.start()
    lost = missing_from_index(server.index, acknowledged)
    served = missing_from_server(server, acknowledged)
    status, _ = request(server.connection(), "POST", "/query", {"text": texts[0], "top": 10})
    return {"acknowledged_before_kill": len(acknowledged), "missing_after_restart": len(lost),
            "missing_from_server_sample": len(served), "restart_s": restart, "query_after_restart": status,
            "errors_before_kill": tally.errors[:5]}


def machine() -> dict[str, Any]:
    top = subprocess.run(["ps", "-eo", "pcpu,etimes,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    mine = {str(os.getpid())}
    busy = [line.strip()[:160] for line in top.splitlines()[1:8] if line.split() and float(line.split()[0]) >= 5.0]
    return {"loadavg": os.getloadavg(), "cores": os.cpu_count(), "busy": busy, "pid": mine}


# -- main ------------------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--add-batch", type=int, default=10, help="documents per add; 0: no adding client")
    parser.add_argument("--also-without-adds", action="store_true",
                        help="run every client count a second time without the adding client, for comparison")
    parser.add_argument("--queries", type=int, default=2000, help="distinct query texts drawn from the corpus")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/neardup-bench-serve"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--json", type=Path, default=HERE / "out" / "bench_serve.json")
    args = parser.parse_args()

    corpus, _ = ensure_corpus("realistic", args.docs, seed=7)
    args.workdir.mkdir(parents=True, exist_ok=True)
    index = args.workdir / f"idx-{args.docs}"
    results: dict[str, Any] = {"docs": args.docs, "readers": args.readers, "seconds": args.seconds,
                               "machine_before": machine()}
    results["index_build_s"] = build_index(index, corpus, args)
    with Index.open(str(index)) as opened:
        results["documents_at_start"] = len(opened)
    records = read_sample(corpus, args.queries)
    texts = [r["text"] for r in records]
    log(f"bench_serve: {results['documents_at_start']:,} documents, {len(texts)} query texts, "
        f"readers {args.readers}, clients {args.clients}, {args.seconds:g} s each")

    server = Server(index, args.readers)
    run_id = time.strftime("%Y%m%d%H%M%S")
    try:
        results["start_s"] = server.start()
        phases = []
        batches = [args.add_batch] + ([0] if args.also_without_adds and args.add_batch else [])
        for batch in batches:
            for clients in [int(c) for c in args.clients.split(",")]:
                options = argparse.Namespace(**{**vars(args), "add_batch": batch})
                prefix = f"add-{run_id}-p{len(phases)}-c{clients}"  # distinct ids when a level repeats
                phase = run_phase(server, clients, texts, records, options, prefix)
                phase["adding"] = bool(batch)
                log(f"  {clients:>2} clients{'' if batch else ' (no adds)'}: {phase['queries_per_s']:.1f} q/s, "
                    f"p50 {phase['p50_ms']:.1f} ms, p99 {phase['p99_ms']:.1f} ms, errors {phase['errors']}, "
                    f"added {phase['added']} ({phase['adds_per_s']:.0f} docs/s)")
                for example in phase["error_examples"]:
                    log(f"     error: {example}")
                phases.append(phase)
        acknowledged = [x for phase in phases for x in phase.pop("acknowledged")]
        results["phases"] = phases
        results["acknowledged"] = len(acknowledged)
        results["missing_after_phases"] = len(missing_from_index(index, acknowledged))
        results["missing_from_server_sample"] = len(missing_from_server(server, acknowledged))
        results["kill9"] = kill_test(server, texts, records, args, f"kill-{run_id}")
        log(f"  kill -9: {results['kill9']}")
    finally:
        server.stop()
    results["machine_after"] = machine()
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    failed = (any(p["errors"] for p in results["phases"]) or results["missing_after_phases"]
              or results["kill9"]["missing_after_restart"] or results["kill9"]["missing_from_server_sample"])
    return 1 if failed else 0


def build_index(index: Path, corpus: Path, args: argparse.Namespace) -> float | None:
    if index.exists() and not args.rebuild:
        try:
            with Index.open(str(index)) as opened:
                if len(opened) >= args.docs:
                    log(f"bench_serve: reusing {index} ({len(opened):,} documents)")
                    return None
        except Exception as err:
            log(f"bench_serve: {index} unusable ({err}); rebuilding")
    if index.exists():
        import shutil

        shutil.rmtree(index)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "neardup", "index", str(index), str(corpus), "--no-progress", "-q"],
                   check=True, env=ENV)
    return time.monotonic() - started


def read_sample(corpus: Path, count: int) -> list[dict[str, Any]]:
    with corpus.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    return random.Random(11).sample(records, min(count, len(records)))


def print_table(results: dict[str, Any]) -> None:
    print(f"\nneardup serve, {results['documents_at_start']:,} documents, {results['readers']} reader threads, "
          f"{results['seconds']:g} s per row; adding: one more client adds batches back to back meanwhile")
    columns = ["clients", "adding", "queries/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "adds/s",
               "add p50 ms", "server CPU"]
    print(" ".join(f"{c:>10}" for c in columns))
    for p in results["phases"]:
        values = [p["clients"], "yes" if p["adding"] else "no", f"{p['queries_per_s']:.1f}", f"{p['p50_ms']:.1f}",
                  f"{p['p90_ms']:.1f}", f"{p['p99_ms']:.1f}", f"{p['max_ms']:.1f}", p["errors"],
                  f"{p['adds_per_s']:.0f}", f"{p['add_p50_ms']:.1f}", f"{p['server_cpu_s'] / p['wall_s']:.0%}"]
        print(" ".join(f"{v:>10}" for v in values))
    kill = results["kill9"]
    print(f"acknowledged adds: {results['acknowledged']:,}, missing afterwards: {results['missing_after_phases']} "
          f"(server sample: {results['missing_from_server_sample']})")
    print(f"kill -9 with adds in flight: {kill['acknowledged_before_kill']:,} acknowledged before the kill, "
          f"{kill['missing_after_restart']} missing after restart "
          f"(server sample {kill['missing_from_server_sample']}); "
          f"restart to first answer {kill['restart_s']:.1f} s; query after restart: {kill['query_after_restart']}")
    print(f"load average before {results['machine_before']['loadavg']}, after {results['machine_after']['loadavg']}")
    for line in results["machine_before"]["busy"]:
        print(f"  busy before: {line}")


if __name__ == "__main__":
    sys.exit(main())
