"""Abusive clients beside normal ones against ``neardup serve`` on loopback: are the normal ones still served?

What it does
------------
1. The corpus: ``corpus.ensure_corpus("realistic", --docs, seed=7)`` (cached under
   /tmp/neardup-corpora; generating it reads ../shared/data; when that data is missing the script
   says so and falls back to a generated corpus of random words, cached beside it). The index, in
   --workdir (kept and reused; ``--rebuild``): the corpus plus --copies syndicated copies of one
   article (a byline line added: the "story with many copies" of the batch below), built with
   ``python -m neardup index``.
2. The server: ``python -m neardup serve IDX --port 0 [--limit NAME=VALUE ...]`` in a subprocess of
   its own session (one process; it starts a forkserver and a worker process for large requests),
   read-only. Its limits are read from ``GET /stats``. One large request warms the worker first
   (timed: the cold start a first large request pays).
3. Phase A, baseline: --clients normal clients, each a thread of this process with its own
   keep-alive ``http.client`` connection from 127.0.0.2, cycle through ``POST /query`` (a corpus
   article, top 10), ``GET /health`` and ``GET /`` (the page), --think seconds apart, for --seconds
   after a short warm-up. Latency is from sending the request to the last byte of the answer; an
   answer that is not a 200 of the expected shape, or a failed connection, is an error.
4. Phase B, abuse: the same normal clients and, at the same time:

   * --slow-heads connections (from 127.0.1.1) sending a request head one byte a second, and
     --idle connections (127.0.1.2) sending nothing: the server's head deadline
     (``header_timeout``) must close each with a 408; each is reopened at once, so they are always
     there;
   * --big-bodies connections (127.0.1.3) declaring ``Content-Length: 16777216`` and sending 64 KiB,
     then --body-rate bytes a second: they hold the body budget; reopened at once when closed;
   * a heavy client (127.0.1.4), one request at a time: ``POST /query`` of ~--nfkc-mb MiB of
     "\\u3300" (SQUARE APAATO, which NFKC turns into four characters), then ``POST /query`` of the
     first corpus article cut to 1/--story-repeats of --story-mb MiB and repeated --story-repeats
     times (one paragraph per line; ``--story-id`` to repeat another article, e.g. the syndicated one);
   * a batch client (127.0.1.5): ``POST /query/batch`` of --batch-queries copies of the syndicated
     article with ``top`` --batch-top: the answer would quote the story for each of its copies, for
     each query, well over ``max_answer``: a 413 is expected.

   Each abusive group has its own source address, each under ``max_client_connections``, so what
   is exercised is the deadlines and budgets, not the per-address cap.
5. Phase C, heavy requests alone: the normal clients and one client sending the three heavy
   requests one after the other (no connection abuse), so that each heavy request's own time, and
   what it does to ``GET /`` and ``/health``, are measured apart, even when phase B refused them.

Between phases the script waits for the server to be idle (its process tree under 15% of a core).
A sampler reads VmRSS and VmHWM of the server's process tree (/proc, every 0.25 s) throughout.

Targets (the issue's acceptance targets), each printed as met or MISSED:

* normal clients in phase B: p50 and p99 of each kind at most 2x phase A's, and no errors;
* peak memory of the server's process tree (sum of VmRSS; shared pages count in each process, so
  an upper bound) at most 1 GiB;
* ``GET /`` and ``/health`` latency while a heavy request is in flight at most 100 ms;
* the "\\u3300" query answered within 10 s, the repeated story within 2 s (times of requests the
  server worked on: a 503 refusal is listed, not timed); the batch answered 413;
* slow and idle connections closed with 408 after ``header_timeout``; no 500 answered to any
  client, and no error or traceback in the server's log (kept in --workdir as server.log).

The machine is shared and has 2 cores: the clients run on the same cores as the server, and
other work comes and goes, so the figures are medians and ratios of one run; the load average and
the busiest other processes are printed before and after. Default run: about 2.5 minutes (the
first run also generates the corpus and builds the index).

    PYTHONPATH=src python benchmarks/bench_abuse.py [--docs 20000] [--clients 4] [--seconds 30]
        [--think 0.05] [--slow-heads 100] [--idle 100] [--big-bodies 100] [--batch-queries 16]
        [--limit header_timeout=10] [--workdir /tmp/neardup-bench-abuse] [--rebuild]
        [--json benchmarks/out/bench_abuse.json]

Exit status 0 when every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
HOST = "127.0.0.1"
#: Source addresses (all loopback): the normal clients, and each abusive group apart.
NORMAL_ADDRESS = "127.0.0.2"
ADDRESSES = {"slow_head": "127.0.1.1", "idle": "127.0.1.2", "big_body": "127.0.1.3", "heavy": "127.0.1.4",
             "batch": "127.0.1.5"}
NORMAL_KINDS = ("query", "health", "page")
SHOWN = {"query": "POST /query", "health": "GET /health", "page": "GET /"}
HEAVY_KINDS = ("nfkc", "story", "batch")
BIG_BODY = 16 * MiB
RATIO_TARGET, MEMORY_TARGET, PAGE_TARGET_MS = 2.0, GiB, 100.0
HEAVY_TARGET_S = {"nfkc": 10.0, "story": 2.0}
HEAVY_NAMES = {"nfkc": '"\\u3300" query', "story": "repeated story query", "batch": "huge-answer batch"}
ABUSE_NAMES = {"slow_head": "slow heads (1 byte/s)", "idle": "idle connections",
               "big_body": "16 MiB bodies, sent slowly"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the corpus and the index -------------------------------------------------------------------------------

def corpus_path(docs: int) -> Path:
    """The realistic corpus (generated from ../shared/data), or a fallback of random words when that data
    is missing."""
    from corpus import CACHE, DATA, cache_key, ensure_corpus, missing_data

    cached = Path(CACHE) / f"{cache_key('realistic', docs, 7)}.jsonl"
    missing = missing_data(Path(DATA))
    if cached.is_file() or not missing:
        return ensure_corpus("realistic", docs, seed=7)[0]
    log(f"bench_abuse: the shared data is missing ({', '.join(str(p) for p in missing)}); "
        "falling back to a generated corpus of random words")
    return fallback_corpus(docs, Path(CACHE))


def fallback_corpus(docs: int, cache: Path) -> Path:
    """Articles of random words (3-25 paragraphs of 15-80 words, from a 30,000-word vocabulary), 10% of
    them copies of a recent one with a byline added; deterministic."""
    path = cache / f"fallback-{docs}-s7.jsonl"
    if path.is_file():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    syllables = [a + b for a in "bcdfghjklmnprstvwz" for b in "aeiou"]
    vocabulary = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(40_000)})
    texts: list[str] = []
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as out:
        for number in range(docs):
            if texts and rng.random() < 0.1:
                text = f"By Staff Writer {number}\n" + rng.choice(texts[-1000:])
            else:
                text = "\n".join(" ".join(rng.choice(vocabulary) for _ in range(rng.randint(15, 80))).capitalize()
                                 + "." for _ in range(rng.randint(3, 25)))
            texts.append(text)
            out.write(json.dumps({"id": f"n{number:07d}", "text": text, "source": f"Outlet {number % 12}"}) + "\n")
    os.replace(tmp, path)
    return path


def read_records(corpus: Path) -> list[dict[str, Any]]:
    with corpus.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def syndicated_original(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The article given many copies: the first after the first one with at least 1,500 characters."""
    return next((r for r in records[1:] if len(r["text"]) >= 1500), records[1])


def build_index(args: argparse.Namespace, corpus: Path, original: dict[str, Any]) -> tuple[Path, float | None]:
    """The corpus plus ``--copies`` syndicated copies of ``original``, indexed (reused when complete)."""
    from neardup import Index

    index = args.workdir / f"idx-{args.docs}-c{args.copies}"
    expected = args.docs + args.copies
    if index.exists() and not args.rebuild:
        try:
            with Index.open(str(index)) as opened:
                if len(opened) == expected:
                    log(f"bench_abuse: reusing {index} ({expected:,} documents)")
                    return index, None
        except Exception as err:
            log(f"bench_abuse: {index} unusable ({err}); rebuilding")
    if index.exists():
        shutil.rmtree(index)
    copies = args.workdir / f"syndicated-{original['id']}-{args.copies}.jsonl"
    with copies.open("w", encoding="utf-8") as out:
        for i in range(args.copies):
            outlet = f"Syndicate Outlet {i % 97}"
            out.write(json.dumps({"id": f"syndicated-{i:05d}", "text": f"By Staff Writer {i}, {outlet}\n"
                                  f"{original['text']}", "source": outlet}) + "\n")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "neardup", "index", str(index), str(corpus), str(copies), "--no-progress",
                    "-q"], check=True, env=ENV)
    return index, time.monotonic() - started


# -- the server and its process tree ------------------------------------------------------------------------

class Server:
    """``neardup serve`` in a subprocess of its own session; its address is read from its stderr."""

    def __init__(self, index: Path, limits: list[str], log_path: Path) -> None:
        self.index, self.limits, self.log_path = index, limits, log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.known: set[int] = set()   # every pid seen in its tree, to be sure all are gone at the end

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 120) -> float:
        started = time.monotonic()
        command = [sys.executable, "-m", "neardup", "serve", str(self.index), "--port", "0"]
        for item in self.limits:
            command += ["--limit", item]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV,
                                        start_new_session=True)
        assert self.process.stderr is not None
        seen = []
        while time.monotonic() - started < timeout:
            line = self.process.stderr.readline().decode("utf-8", "replace")
            if not line:
                break
            seen.append(line)
            found = re.search(r"at http://[^:/\s]+:(\d+)/", line)
            if found:
                self.port = int(found.group(1))
                break
        if not self.port:
            raise RuntimeError("the server did not start:\n" + "".join(seen))
        threading.Thread(target=self._drain, args=(self.process.stderr, seen), daemon=True).start()
        while time.monotonic() - started < timeout:
            try:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=10)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    connection.close()
                    return time.monotonic() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the server did not answer /health")

    def _drain(self, stream: Any, first: list[str]) -> None:
        with self.log_path.open("w", encoding="utf-8") as out:
            out.writelines(first)
            for raw in stream:
                out.write(raw.decode("utf-8", "replace"))
                out.flush()

    def get_json(self, path: str) -> Any:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            connection.request("GET", path)
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def tree(self) -> list[int]:
        """The server's pid and its descendants' (forkserver, resource tracker, worker processes)."""
        children: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    stat = Path(f"/proc/{name}/stat").read_text()
                except OSError:
                    continue
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(name))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        self.known.update(found)
        return found

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL after 5 s; then every pid ever seen in its tree."""
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            self.known.update(self.tree())
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if self.process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=wait)
        for pid in self.known - {self.pid}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in bytes, and CPU seconds (utime + stime) of one process."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line[:5]] = int(line.split()[1]) * KiB
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    out["cpu_ticks"] = int(fields[11]) + int(fields[12])
    return out


def role(pid: int, root: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return "?"
    if pid == root:
        return "server"
    if "resource_tracker" in command:
        return "resource tracker"
    if "forkserver" in command:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        return "forkserver" if ppid == root else "worker"
    return command[:60]


class Watch(threading.Thread):
    """Samples the server's process tree: the sum of VmRSS, each process's VmHWM, CPU seconds."""

    def __init__(self, server: Server, every: float = 0.25) -> None:
        super().__init__(daemon=True, name="bench-abuse-watch")
        self.server, self.every = server, every
        self.samples: list[tuple[float, int, float, dict[str, int]]] = []   # (monotonic, sum of VmRSS, CPU
        # seconds, VmRSS by role)
        self.peak_hwm: dict[int, int] = {}
        self.roles: dict[int, str] = {}
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._ticks = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        pids, rescanned = [self.server.pid], 0.0
        while not self.stopped.is_set():
            now = time.monotonic()
            if now - rescanned > 2.0:
                with contextlib.suppress(OSError):
                    pids = self.server.tree()
                rescanned = now
            rss, ticks = 0, 0
            by_role: Counter[str] = Counter()
            for pid in pids:
                try:
                    status = proc_status(pid)
                except (OSError, IndexError, ValueError):
                    continue
                rss += status.get("VmRSS", 0)
                ticks += status["cpu_ticks"]
                with self._lock:
                    self.peak_hwm[pid] = max(self.peak_hwm.get(pid, 0), status.get("VmHWM", 0))
                    if pid not in self.roles:
                        self.roles[pid] = role(pid, self.server.pid)
                    by_role[self.roles[pid]] += status.get("VmRSS", 0)
            with self._lock:
                self.samples.append((now, rss, ticks / self._ticks, dict(by_role)))
            self.stopped.wait(self.every)

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Peak sum of VmRSS (MiB), peak VmRSS by role, and cores used, between ``start`` and ``end``."""
        with self._lock:
            inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return {"peak_rss_mb": float("nan"), "cpu_share": float("nan"), "peak_rss_by_role_mb": {},
                    "start_rss_mb": float("nan")}
        roles = {r for s in inside for r in s[3]}
        return {"peak_rss_mb": max(s[1] for s in inside) / MiB, "start_rss_mb": inside[0][1] / MiB,
                "peak_rss_by_role_mb": {r: max(s[3].get(r, 0) for s in inside) / MiB for r in sorted(roles)},
                "cpu_share": (inside[-1][2] - inside[0][2]) / (inside[-1][0] - inside[0][0])}

    def hwm(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"pid": pid, "role": self.roles.get(pid, "?"), "vmhwm_mb": value / MiB}
                    for pid, value in sorted(self.peak_hwm.items())]

    def settle(self, limit: float = 90.0, share: float = 0.15) -> float:
        """Wait until the tree used under ``share`` of a core over the last second; seconds waited."""
        started = time.monotonic()
        time.sleep(1.2)
        while time.monotonic() - started < limit:
            now = time.monotonic()
            if self.window(now - 1.0, now)["cpu_share"] < share:
                break
            time.sleep(0.5)
        return time.monotonic() - started


# -- normal clients ------------------------------------------------------------------------------------------

@dataclass
class Sample:
    kind: str
    start: float
    end: float
    status: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


def normal_client(port: int, texts: list[str], seed: int, think: float, stop: threading.Event, out: list[Sample],
                  lock: threading.Lock) -> None:
    """Query, /health, the page, again, ``think`` seconds apart, on one keep-alive connection (reopened
    after an error or a closing answer), until ``stop``."""
    rng = random.Random(seed)
    connection = http.client.HTTPConnection(HOST, port, timeout=60, source_address=(NORMAL_ADDRESS, 0))
    mine: list[Sample] = []
    turn = rng.randrange(3)
    while not stop.is_set():
        kind = NORMAL_KINDS[turn % 3]
        turn += 1
        body: bytes | None = None
        if kind == "query":
            body = json.dumps({"text": texts[rng.randrange(len(texts))], "top": 10}).encode()
        path = {"query": "/query", "health": "/health", "page": "/"}[kind]
        started = time.monotonic()
        try:
            connection.request("POST" if body else "GET", path, body=body,
                               headers={"Content-Type": "application/json"} if body else {})
            response = connection.getresponse()
            payload = response.read()
            status = str(response.status) if response.status != 200 or valid(kind, payload) else "200 malformed"
            if response.will_close:
                connection.close()
        except (OSError, http.client.HTTPException) as err:
            status = type(err).__name__
            connection.close()
        mine.append(Sample(kind, started, time.monotonic(), status))
        if think:
            stop.wait(think * rng.uniform(0.5, 1.5))
    connection.close()
    with lock:
        out.extend(mine)


def valid(kind: str, payload: bytes) -> bool:
    if kind == "page":
        return b"<html" in payload[:2000].lower()
    try:
        data = json.loads(payload)
    except ValueError:
        return False
    return isinstance(data.get("matches"), list) if kind == "query" else data.get("status") == "ok"


# -- heavy clients: one request at a time, on a fresh connection ----------------------------------------------

@dataclass
class Reply:
    kind: str
    start: float
    end: float
    status: str
    answer_bytes: int = 0
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.end - self.start


def raw_request(port: int, path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def exchange(kind: str, port: int, request: bytes, source: str, timeout: float) -> Reply:
    """Send ``request`` (stopping when the server answers early: a refusal from the head, or a busy
    server), then read the answer; the status, or what went wrong."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        with socket.create_connection((HOST, port), timeout=timeout, source_address=(source, 0)) as sock:
            sock.setblocking(False)
            with memoryview(request) as view:
                sent = 0
                while sent < len(view):
                    readable, writable, _ = select.select([sock], [sock], [], max(0.0, deadline - time.monotonic()))
                    if readable:
                        break
                    if not writable:
                        raise TimeoutError
                    try:
                        sent += sock.send(view[sent:sent + 256 * KiB])
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, ConnectionResetError):
                        break
            return read_reply(kind, sock, started, deadline)
    except TimeoutError:
        return Reply(kind, started, time.monotonic(), "no answer", detail=f"none within {timeout:g} s")
    except OSError as err:
        return Reply(kind, started, time.monotonic(), type(err).__name__, detail=str(err)[:200])


def read_reply(kind: str, sock: socket.socket, started: float, deadline: float) -> Reply:
    data = bytearray()
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(256 * KiB)
        if not chunk:
            return Reply(kind, started, time.monotonic(), "closed" if not data else "truncated")
        data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode("ascii", "replace")
    found = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(found.group(1)) if found else None
    received, prefix = len(body), body[:300]
    while length is None or received < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(MiB)
        if not chunk:
            break
        received += len(chunk)
        if len(prefix) < 300:
            prefix += chunk[:300 - len(prefix)]
    detail = prefix.decode("utf-8", "replace") if status != "200" else ""
    return Reply(kind, started, time.monotonic(), status, received, detail)


def heavy_client(port: int, requests: list[tuple[str, bytes]], source: str, start_at: float, until: float,
                 timeout: float, pause: float, out: list[Reply], lock: threading.Lock) -> None:
    """Each of ``requests`` in turn, one at a time, from ``start_at`` until ``until`` (each at least once)."""
    time.sleep(max(0.0, start_at - time.monotonic()))
    rounds = 0
    while rounds == 0 or time.monotonic() < until:
        rounds += 1
        for kind, request in requests:
            reply = exchange(kind, port, request, source, timeout)
            with lock:
                out.append(reply)
            log(f"    {kind}: {reply.status} in {reply.seconds:.2f} s"
                + (f" ({reply.answer_bytes:,} bytes)" if reply.status == "200" else f" {reply.detail[:120]}"))
            time.sleep(pause)
            if time.monotonic() >= until and rounds > 1:
                break


# -- the abusive connections (a process of their own: one asyncio loop) ----------------------------------------

class Tally:
    def __init__(self) -> None:
        self.outcomes: dict[str, Counter[str]] = {}
        self.held: dict[str, dict[str, list[float]]] = {}
        self.open: Counter[str] = Counter()
        self.open_samples: dict[str, list[int]] = {}

    def record(self, kind: str, outcome: str, held: float) -> None:
        self.outcomes.setdefault(kind, Counter())[outcome] += 1
        self.held.setdefault(kind, {}).setdefault(outcome, []).append(held)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind, outcomes in self.outcomes.items():
            held = self.held[kind]
            out[kind] = {"outcomes": dict(outcomes.most_common()),
                         "held_s": {o: {"p50": statistics.median(v), "min": min(v), "max": max(v)}
                                    for o, v in held.items()},
                         "open_mean": statistics.fmean(self.open_samples.get(kind, [0])),
                         "open_min": min(self.open_samples.get(kind, [0]))}
        return out


def endless_head() -> Iterable[bytes]:
    yield from (bytes([b]) for b in b"POST /query HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    while True:
        yield b"a"


async def feed(kind: str, writer: asyncio.StreamWriter, rate: int) -> None:
    """What one abusive connection sends (until cancelled or the server stops it)."""
    try:
        if kind == "slow_head":
            for byte in endless_head():
                writer.write(byte)
                await writer.drain()
                await asyncio.sleep(1.0)
        elif kind == "big_body":
            writer.write(f"POST /query HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {BIG_BODY}\r\n\r\n".encode() + b"{" + b" " * (64 * KiB - 1))
            await writer.drain()
            sent = 64 * KiB
            while sent + rate < BIG_BODY:
                await asyncio.sleep(1.0)
                writer.write(b" " * rate)
                await writer.drain()
                sent += rate
        await asyncio.Event().wait()   # idle, or a body stopped short of its end: hold the connection
    except (OSError, RuntimeError):
        return


async def abusive_connection(kind: str, port: int, source: str, rate: int, stop: float, tally: Tally) -> None:
    """One connection of ``kind``, reopened whenever the server closes it, until ``stop``."""
    loop = asyncio.get_running_loop()
    while loop.time() < stop:
        opened = loop.time()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port, local_addr=(source, 0)), 10)
        except (OSError, asyncio.TimeoutError) as err:
            tally.record(kind, f"connect failed ({type(err).__name__})", loop.time() - opened)
            await asyncio.sleep(0.5)
            continue
        tally.open[kind] += 1
        sender = asyncio.create_task(feed(kind, writer, rate))
        try:
            data = await asyncio.wait_for(reader.read(512), max(0.0, stop - loop.time()))
            found = re.match(rb"HTTP/1\.[01] (\d{3})", data)
            outcome = found.group(1).decode() if found else ("closed, no answer" if not data else "not HTTP")
        except asyncio.TimeoutError:
            outcome = "open at the end"
        except OSError as err:
            outcome = type(err).__name__
        tally.open[kind] -= 1
        tally.record(kind, outcome, loop.time() - opened)
        sender.cancel()
        writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await sender
        if outcome.startswith("closed") or (outcome[0].isdigit() and outcome != "408"):
            await asyncio.sleep(0.2)   # refused: a short pause (a tight loop would measure this client's CPU)


async def abuse(config: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stop = loop.time() + config["seconds"]
    tally = Tally()
    tasks = [asyncio.create_task(abusive_connection(kind, config["port"], ADDRESSES[kind], config["body_rate"],
                                                    stop, tally))
             for kind, count in config["counts"].items() for _ in range(count)]
    sample_from = loop.time() + config["warmup"]
    while loop.time() < stop:
        await asyncio.sleep(0.5)
        if loop.time() >= sample_from:
            for kind in config["counts"]:
                tally.open_samples.setdefault(kind, []).append(tally.open[kind])
    await asyncio.gather(*tasks, return_exceptions=True)
    return {**tally.summary(), "cpu_s": time.process_time()}


def abuser_main(config: str) -> int:
    print(json.dumps(asyncio.run(abuse(json.loads(config)))), flush=True)
    return 0


# -- phases -------------------------------------------------------------------------------------------------

def run_phase(name: str, server: Server, watch: Watch, args: argparse.Namespace, texts: list[str],
              heavy: dict[str, bytes] | None, connections: bool, warmup: float, one_by_one: bool = False
              ) -> dict[str, Any]:
    """One phase: the normal clients, with the abusive connections, and the heavy requests (a client for
    the two large queries beside one for the batch, or, ``one_by_one``, one client sending all three in
    turn, so that what each does to the others is told apart)."""
    log(f"bench_abuse: phase {name}: {args.clients} normal clients"
        + (", slow/idle/big-body connections" if connections else "")
        + (", heavy requests" + (" one by one" if one_by_one else "") if heavy else "")
        + f", {warmup:g} s + {args.seconds:g} s")
    start = time.monotonic()
    measure_from, until = start + warmup, start + warmup + args.seconds
    cpu_before = time.process_time()
    lock = threading.Lock()
    samples: list[Sample] = []
    replies: list[Reply] = []
    abuser: subprocess.Popen[bytes] | None = None
    if connections:
        config = {"port": server.port, "seconds": until - time.monotonic(), "warmup": warmup,
                  "body_rate": args.body_rate,
                  "counts": {"slow_head": args.slow_heads, "idle": args.idle, "big_body": args.big_bodies}}
        abuser = subprocess.Popen([sys.executable, __file__, "--abuser", json.dumps(config)], stdout=subprocess.PIPE,
                                  env=ENV)
    stop = threading.Event()
    normal = [threading.Thread(target=normal_client, args=(server.port, texts, 100 * ord(name) + i, args.think, stop,
                                                           samples, lock), daemon=True) for i in range(args.clients)]
    threads: list[threading.Thread] = []
    if heavy:
        groups = [HEAVY_KINDS] if one_by_one else [("nfkc", "story"), ("batch",)]
        for kinds in groups:
            threads.append(threading.Thread(target=heavy_client, args=(
                server.port, [(kind, heavy[kind]) for kind in kinds], ADDRESSES["batch" if kinds == ("batch",) else
                                                                                "heavy"],
                measure_from, until, args.request_timeout, 1.0, replies, lock), daemon=True))
    try:
        for thread in normal + threads:
            thread.start()
        time.sleep(max(0.0, until - time.monotonic()))
        for thread in threads:     # the normal clients go on while a heavy request is still in flight
            thread.join()
        stop.set()
        for thread in normal:
            thread.join()
        abused: dict[str, Any] = {}
        if abuser is not None:
            output, _ = abuser.communicate(timeout=60)
            abused = json.loads(output)
    finally:
        if abuser is not None and abuser.poll() is None:
            abuser.kill()
            abuser.wait()
    end = time.monotonic()
    measured = [s for s in samples if measure_from <= s.start < until]
    phase: dict[str, Any] = {"name": name, "seconds": args.seconds, "wall_s": end - start,
                             "client_cpu_s": time.process_time() - cpu_before, "abusers": abused,
                             **{f"server_{k}": v for k, v in watch.window(start, end).items()},
                             "server_peak_rss_mb_window": watch.window(start, until)["peak_rss_mb"],
                             "server_peak_rss_mb_after": watch.window(until, end)["peak_rss_mb"]}
    phase["normal"] = {kind: summary([s.seconds for s in measured if s.kind == kind and s.status == "200"],
                                     [s.status for s in measured if s.kind == kind and s.status != "200"])
                       for kind in NORMAL_KINDS}
    phase["heavy"] = {kind: heavy_summary([r for r in replies if r.kind == kind]) for kind in HEAVY_KINDS} \
        if heavy else {}
    phase["during_heavy"] = during_heavy([s for s in samples if s.start >= measure_from], replies) if heavy else {}
    phase["statuses_500"] = [f"normal {s.kind}" for s in samples if s.status.startswith("5") and s.status != "503"] \
        + [f"{r.kind}: {r.detail[:200]}" for r in replies if r.status.startswith("5") and r.status != "503"] \
        + [f"abusive {kind}" for kind, a in abused.items() if isinstance(a, dict)
           for outcome in a["outcomes"] if outcome.startswith("5") and outcome != "503"]
    for kind in NORMAL_KINDS:
        n = phase["normal"][kind]
        log(f"  {SHOWN[kind]:>12}: n {n['n']}, p50 {n['p50_ms']:.1f} ms, p99 {n['p99_ms']:.1f} ms, "
            f"max {n['max_ms']:.1f} ms, errors {n['errors']} {n['error_kinds']}")
    return phase


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def summary(seconds: list[float], errors: list[str]) -> dict[str, Any]:
    return {"n": len(seconds), "p50_ms": 1e3 * percentile(seconds, 0.5), "p99_ms": 1e3 * percentile(seconds, 0.99),
            "max_ms": 1e3 * max(seconds, default=float("nan")), "errors": len(errors),
            "error_kinds": dict(Counter(errors).most_common())}


def heavy_summary(replies: list[Reply]) -> dict[str, Any]:
    worked = [r.seconds for r in replies if r.status not in ("503",)]
    return {"n": len(replies), "statuses": dict(Counter(r.status for r in replies).most_common()),
            "seconds": [round(r.seconds, 3) for r in replies], "worked_max_s": max(worked, default=float("nan")),
            "worked_p50_s": statistics.median(worked) if worked else float("nan"),
            "answer_bytes": max((r.answer_bytes for r in replies), default=0),
            "details": sorted({r.detail[:160] for r in replies if r.detail})[:4]}


def during_heavy(samples: list[Sample], replies: list[Reply]) -> dict[str, Any]:
    """The slowest GET / and /health whose time overlapped a heavy request of each kind (and any)."""
    out: dict[str, Any] = {}
    for kind in (*HEAVY_KINDS, "any"):
        windows = [(r.start, r.end) for r in replies if kind in ("any", r.kind)]
        inside = [s for s in samples if s.kind in ("health", "page") and s.status == "200"
                  and any(s.start < end and s.end > start for start, end in windows)]
        slowest = max(inside, key=lambda s: s.seconds, default=None)
        out[kind] = {"n": len(inside), "max_ms": 1e3 * slowest.seconds if slowest else float("nan"),
                     "max_kind": SHOWN[slowest.kind] if slowest else "",
                     "in_flight_s": sum(end - start for start, end in windows)}
    return out


def warm_worker(server: Server) -> tuple[str, float]:
    """One large request (over inline_body, with characters NFKC maps): starts the worker process and
    fills its caches, so phase B and C time a warm worker. Its time is the cold start."""
    body = json.dumps({"text": "\u3300" * 8000 + "\n" + "warm up the worker " * 4000}, ensure_ascii=False).encode()
    reply = exchange("warm", server.port, raw_request(server.port, "/query", body), NORMAL_ADDRESS, 300)
    return reply.status, reply.seconds


def heavy_requests(port: int, records: list[dict[str, Any]], original: dict[str, Any],
                   args: argparse.Namespace) -> tuple[dict[str, bytes], dict[str, Any]]:
    nfkc_chars = int(args.nfkc_mb * MiB) // 3 - 4      # U+3300 is 3 bytes of UTF-8
    nfkc = b'{"text":"' + "\u3300".encode() * nfkc_chars + b'"}'
    story = next((r for r in records if r["id"] == args.story_id), records[0]) if args.story_id else records[0]
    unit = story["text"].encode()[:int(args.story_mb * MiB) // args.story_repeats - 1].decode("utf-8", "ignore")
    repeated = json.dumps({"text": "\n".join([unit] * args.story_repeats)}).encode()
    batch = json.dumps({"queries": [{"text": original["text"]}] * args.batch_queries, "top": args.batch_top}).encode()
    about = {"nfkc": {"body_bytes": len(nfkc), "characters": nfkc_chars},
             "story": {"body_bytes": len(repeated), "story_id": story["id"], "unit_chars": len(unit),
                       "repeats": args.story_repeats},
             "batch": {"body_bytes": len(batch), "queries": args.batch_queries, "top": args.batch_top,
                       "story_id": original["id"], "copies_indexed": args.copies}}
    return {"nfkc": raw_request(port, "/query", nfkc), "story": raw_request(port, "/query", repeated),
            "batch": raw_request(port, "/query/batch", batch)}, about


def source_state() -> str:
    """The commit, and a digest of the package's source as it is (it may hold uncommitted changes)."""
    import hashlib

    def git(*command: str) -> str:
        return subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    digest = hashlib.sha256()
    for path in sorted((ROOT / "src" / "neardup").rglob("*.py")):
        digest.update(path.read_bytes())
    changed = len(git("status", "--porcelain", "--", "src").splitlines())
    return f"commit {git('rev-parse', '--short', 'HEAD') or '?'}, {changed} changed files under src/, " \
           f"source digest {digest.hexdigest()[:12]}"


def machine() -> dict[str, Any]:
    top = subprocess.run(["ps", "-eo", "pcpu,etimes,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    busy = [line.strip()[:150] for line in top.splitlines()[1:8] if line.split() and float(line.split()[0]) >= 5.0]
    return {"loadavg": os.getloadavg(), "cores": os.cpu_count(), "busy": busy}


# -- the report ---------------------------------------------------------------------------------------------

def ms(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"


def sec(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"


def mib(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "met" if ok else "MISSED"


def evaluate(results: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """(target, met?, figure) for each of the issue's targets."""
    a, b, c = (results["phases"][name] for name in "ABC")
    limits = results["limits"]
    targets: list[tuple[str, bool | None, str]] = []
    for kind in NORMAL_KINDS:
        base, hit = a["normal"][kind], b["normal"][kind]
        r50, r99 = hit["p50_ms"] / base["p50_ms"], hit["p99_ms"] / base["p99_ms"]
        ok = None if r50 != r50 or r99 != r99 else r50 <= RATIO_TARGET and r99 <= RATIO_TARGET
        targets.append((f"{SHOWN[kind]} under abuse: p50 and p99 <= {RATIO_TARGET:g}x baseline", ok,
                        f"{r50:.2f}x / {r99:.2f}x"))
    errors = sum(b["normal"][k]["errors"] for k in NORMAL_KINDS)
    targets.append(("normal clients under abuse: no errors", errors == 0,
                    f"{errors} errors " + str(Counter({s: n for k in NORMAL_KINDS
                                                       for s, n in b["normal"][k]["error_kinds"].items()}))))
    peak = results["server_peak_rss_mb"]
    targets.append((f"server peak memory over the run (sum of VmRSS of its tree) <= {MEMORY_TARGET // MiB:,} MiB",
                    peak <= MEMORY_TARGET / MiB, f"{peak:,.0f} MiB"))
    for name, phase in (("B", b), ("C", c)):
        worst = phase["during_heavy"]["any"]
        targets.append((f"GET / and /health while heavy requests run (phase {name}) <= {PAGE_TARGET_MS:g} ms",
                        None if worst["n"] == 0 else worst["max_ms"] <= PAGE_TARGET_MS,
                        f"max {ms(worst['max_ms'])} ms ({worst['max_kind']}) over {worst['n']} requests"))
    for kind, limit in HEAVY_TARGET_S.items():
        for name, phase in (("B", b), ("C", c)):
            h = phase["heavy"][kind]
            worked = h["worked_max_s"]
            targets.append((f"{HEAVY_NAMES[kind]} (phase {name}) answered within {limit:g} s",
                            None if worked != worked else worked <= limit and not failed(h["statuses"]),
                            f"max {sec(worked)} s; statuses {h['statuses']}"))
    for name, phase in (("B", b), ("C", c)):
        h = phase["heavy"]["batch"]
        targets.append((f"{HEAVY_NAMES['batch']} (phase {name}): 413 from the answer budget",
                        None if not h["n"] else set(h["statuses"]) <= {"413", "503"} and "413" in h["statuses"],
                        f"statuses {h['statuses']}; max {sec(h['worked_max_s'])} s"))
    header = limits["header_timeout"]
    for kind in ("slow_head", "idle"):
        abused = b["abusers"].get(kind, {})
        closed = {o: n for o, n in abused.get("outcomes", {}).items() if o != "open at the end"}
        held = abused.get("held_s", {}).get("408", {})
        ok = bool(closed) and set(closed) == {"408"} and held.get("max", 1e9) <= header + 2.0
        targets.append((f"{ABUSE_NAMES[kind]}: closed with 408 after header_timeout ({header:g} s)",
                        ok if abused else None,
                        f"outcomes {abused.get('outcomes', {})}; held {held.get('p50', float('nan')):.1f} s p50, "
                        f"{held.get('max', float('nan')):.1f} s max"))
    fives = [x for p in (a, b, c) for x in p["statuses_500"]]
    targets.append(("no 500 answered to any client", not fives, f"{len(fives)}: {fives[:3]}"))
    logged = results["server_log_errors"]
    targets.append(("no error or traceback in the server's log", not logged, "; ".join(logged[:4]) or "none"))
    return targets


def failed(statuses: dict[str, int]) -> bool:
    return any(not s.isdigit() or (s.startswith("5") and s != "503") for s in statuses)



def print_report(results: dict[str, Any]) -> None:
    a, b, c = (results["phases"][name] for name in "ABC")
    limits, about = results["limits"], results["heavy_requests"]
    print(f"\nneardup serve under abuse: {results['documents']:,} documents ({results['docs']:,} corpus articles + "
          f"{results['copies']:,} copies of {about['batch']['story_id']}), {results['clients']} normal clients "
          f"(think {results['think']:g} s), {results['seconds']:g} s measured per phase")
    print(f"code: {results['source']}; run started {results['started']}")
    print("server limits: " + ", ".join(f"{k} {limits[k]:,}" for k in (
        "header_timeout", "body_timeout", "min_body_rate", "body_budget", "max_body", "inline_body", "large_workers",
        "max_waiting_large", "max_answer", "max_client_connections", "max_connections")))
    print(f"worker warm-up (first large request, cold worker): {results['warm_up'][0]} in "
          f"{results['warm_up'][1]:.2f} s")

    print("\nnormal clients (ms; n = answers counted, err = errors)   A: baseline   B: abuse   C: heavy requests "
          "alone")
    head = (f"{'kind':<12} {'A p50/p99':>15} {'n':>5} {'err':>4} {'B p50/p99':>17} {'n':>5} {'err':>4} "
            f"{'ratio p50':>9} {'ratio p99':>9} {'<=2x':>6} {'C p50/p99':>17} {'n':>5} {'err':>4}")
    print(head)
    for kind in NORMAL_KINDS:
        x, y, z = a["normal"][kind], b["normal"][kind], c["normal"][kind]
        r50, r99 = y["p50_ms"] / x["p50_ms"], y["p99_ms"] / x["p99_ms"]
        met = "met" if r50 <= RATIO_TARGET and r99 <= RATIO_TARGET else "MISSED"
        print(f"{SHOWN[kind]:<12} {ms(x['p50_ms']) + ' / ' + ms(x['p99_ms']):>15} {x['n']:>5} {x['errors']:>4} "
              f"{ms(y['p50_ms']) + ' / ' + ms(y['p99_ms']):>17} {y['n']:>5} {y['errors']:>4} {r50:>8.2f}x "
              f"{r99:>8.2f}x {met:>6} {ms(z['p50_ms']) + ' / ' + ms(z['p99_ms']):>17} {z['n']:>5} {z['errors']:>4}")
    for name, phase in (("A", a), ("B", b), ("C", c)):
        kinds = {k: phase["normal"][k]["error_kinds"] for k in NORMAL_KINDS if phase["normal"][k]["errors"]}
        if kinds:
            print(f"  errors in phase {name}: {kinds}")

    print(f"\nabusive connections, phase B (open = mean connections held during the measured {results['seconds']:g} s)")
    print(f"{'group':<28} {'from':<10} {'count':>5} {'open':>6}  outcomes (held seconds p50/max)")
    counts = {"slow_head": results["slow_heads"], "idle": results["idle"], "big_body": results["big_bodies"]}
    for kind, count in counts.items():
        abused = b["abusers"].get(kind)
        if not abused:
            continue
        outcomes = ", ".join(f"{o}: {n} ({abused['held_s'][o]['p50']:.1f}/{abused['held_s'][o]['max']:.1f})"
                             for o, n in abused["outcomes"].items())
        print(f"{ABUSE_NAMES[kind]:<28} {ADDRESSES[kind]:<10} {count:>5} {abused['open_mean']:>6.1f}  {outcomes}")
    if b["abusers"]:
        print(f"  (the abusive clients' own CPU: {b['abusers']['cpu_s']:.1f} s)")

    print("\nheavy requests (one at a time per client; s = seconds from first byte sent to last byte read)")
    print(f"{'request':<58} {'phase':>5} {'n':>3}  {'statuses':<24} {'p50 s':>7} {'max s':>7}  target")
    shapes = {"nfkc": f"POST /query, {about['nfkc']['characters']:,} x U+3300 ({about['nfkc']['body_bytes'] / MiB:.1f}"
                      " MiB)",
              "story": f"POST /query, {about['story']['story_id']} ({about['story']['unit_chars']} chars) x "
                       f"{about['story']['repeats']:,} ({about['story']['body_bytes'] / MiB:.2f} MiB)",
              "batch": f"POST /query/batch, {about['batch']['queries']} x {about['batch']['story_id']}, top "
                       f"{about['batch']['top']} ({about['batch']['body_bytes'] / KiB:.0f} KiB: "
                       f"{'in the worker' if about['batch']['body_bytes'] > limits['inline_body'] else 'inline'})"}
    goals = {"nfkc": "<= 10 s", "story": "<= 2 s", "batch": "413"}
    for kind in HEAVY_KINDS:
        for name, phase in (("B", b), ("C", c)):
            h = phase["heavy"][kind]
            statuses = ", ".join(f"{s}: {n}" for s, n in h["statuses"].items())
            print(f"{shapes[kind] if name == 'B' else '':<58} {name:>5} {h['n']:>3}  {statuses:<24} "
                  f"{sec(h['worked_p50_s']):>7} {sec(h['worked_max_s']):>7}  {goals[kind]}")
            for detail in h["details"][:2]:
                print(f"{'':<58}       {detail[:110]}")
    print("  (p50/max over the requests the server worked on: 503 refusals are counted, not timed)")

    print("\nGET / and /health while heavy requests were in flight (slowest; target <= 100 ms)")
    for name, phase in (("B", b), ("C", c)):
        row = ", ".join(f"{kind}: {ms(d['max_ms'])} ms over {d['n']} ({d['in_flight_s']:.0f} s in flight)"
                        for kind, d in phase["during_heavy"].items())
        print(f"  phase {name}: {row}")

    print("\nserver process tree: peak sum of VmRSS (sampled every 0.25 s), CPU (cores), this process's CPU")
    for name, phase in (("A", a), ("B", b), ("C", c)):
        roles = ", ".join(f"{r} {v:,.0f}" for r, v in phase["server_peak_rss_by_role_mb"].items() if v >= 20)
        print(f"  phase {name}: {mib(phase['server_start_rss_mb'])} MiB at its start (peak "
              f"{mib(phase['settle_peak_rss_mb'])} in the {phase['settle_s']:.0f} s waiting for an idle server before "
              f"it), peak "
              f"{mib(phase['server_peak_rss_mb'])} MiB ({roles}; {mib(phase['server_peak_rss_mb_window'])} up to the "
              f"window's end, {mib(phase['server_peak_rss_mb_after'])} after it), server CPU "
              f"{phase['server_cpu_share']:.2f}, clients' CPU {phase['client_cpu_s'] / phase['wall_s']:.2f} over "
              f"{phase['wall_s']:.0f} s")
    print("  peak VmHWM per process: " + ", ".join(f"{p['role']} {p['vmhwm_mb']:,.0f} MiB" for p in results["hwm"]))
    if results["server_log_errors"]:
        print(f"  server log ({results['server_log']}):")
        for line in results["server_log_errors"][:8]:
            print(f"    {line}")

    print("\ntargets")
    for target, ok, figure in results["targets"]:
        print(f"  {verdict(ok):<12} {target}: {figure}")
    print(f"\nload average before {tuple(round(x, 2) for x in results['machine_before']['loadavg'])}, after "
          f"{tuple(round(x, 2) for x in results['machine_after']['loadavg'])} ({results['machine_before']['cores']} "
          "cores)")
    for when in ("before", "after"):
        for line in results[f"machine_{when}"]["busy"]:
            print(f"  busy {when}: {line}")


def log_errors(path: Path) -> list[str]:
    """What the server logged as errors, counted: its error lines and the exceptions that ended tracebacks."""
    if not path.is_file():
        return []
    found: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(("ERROR", "internal error", "unexpected")) \
                or re.match(r"[A-Za-z_][\w.]*(Error|Exception)\b.*", line):
            found[line.strip()[:160]] += 1
    return [f"{n} x {line}" for line, n in found.most_common()]


# -- main ---------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000, help="corpus articles indexed")
    parser.add_argument("--copies", type=int, default=1000, help="syndicated copies of one article added to the index")
    parser.add_argument("--clients", type=int, default=4, help="normal clients")
    parser.add_argument("--think", type=float, default=0.05, help="seconds between a normal client's requests (mean)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per phase")
    parser.add_argument("--slow-heads", type=int, default=100)
    parser.add_argument("--idle", type=int, default=100)
    parser.add_argument("--big-bodies", type=int, default=100)
    parser.add_argument("--body-rate", type=int, default=16 * KiB, help="bytes a second of each big body after 64 KiB")
    parser.add_argument("--nfkc-mb", type=float, default=15.7, help="MiB of U+3300 in the heavy query")
    parser.add_argument("--story-mb", type=float, default=1.0)
    parser.add_argument("--story-repeats", type=int, default=1000)
    parser.add_argument("--story-id", default=None,
                        help="the article repeated (default: the first; the syndicated one is the first after it "
                             "with 1,500+ characters)")
    parser.add_argument("--batch-queries", type=int, default=16)
    parser.add_argument("--batch-top", type=int, default=1000)
    parser.add_argument("--request-timeout", type=float, default=120.0, help="seconds a heavy request may take")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="a server limit (neardup serve --limit), repeatable")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/neardup-bench-abuse"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--abuser", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.abuser:
        return abuser_main(args.abuser)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: dict[str, Any] = {"docs": args.docs, "copies": args.copies, "clients": args.clients,
                               "think": args.think, "seconds": args.seconds, "slow_heads": args.slow_heads,
                               "idle": args.idle, "big_bodies": args.big_bodies, "machine_before": machine(),
                               "source": source_state(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    args.workdir.mkdir(parents=True, exist_ok=True)
    corpus = corpus_path(args.docs)
    records = read_records(corpus)
    original = syndicated_original(records)
    index, results["index_build_s"] = build_index(args, corpus, original)
    excluded = {records[0]["id"], original["id"]}
    texts = [r["text"] for r in random.Random(11).sample(records, min(2000, len(records))) if r["id"] not in excluded]

    server = Server(index, args.limit, args.workdir / "server.log")
    watch = Watch(server)
    try:
        results["start_s"] = server.start()
        watch.start()
        stats = server.get_json("/stats")
        results["documents"], results["limits"] = stats["documents"], stats["server"]["limits"]
        log(f"bench_abuse: server pid {server.pid} at port {server.port}, {results['documents']:,} documents")
        results["warm_up"] = warm_worker(server)
        heavy, results["heavy_requests"] = heavy_requests(server.port, records, original, args)
        phases: dict[str, Any] = {}
        for name, with_heavy, connections, warmup in (("A", False, False, 3.0), ("B", True, True, 5.0),
                                                      ("C", True, False, 2.0)):
            settle_from = time.monotonic()
            settled = watch.settle()
            settle_peak = watch.window(settle_from, time.monotonic())["peak_rss_mb"]
            log(f"bench_abuse: server idle after {settled:.1f} s")
            phases[name] = run_phase(name, server, watch, args, texts, heavy if with_heavy else None, connections,
                                     warmup, one_by_one=name == "C")
            phases[name]["settle_s"], phases[name]["settle_peak_rss_mb"] = settled, settle_peak
        results["phases"] = phases
        results["server_peak_rss_mb"] = watch.window(0.0, time.monotonic())["peak_rss_mb"]
    finally:
        watch.stopped.set()
        server.stop()
    results["hwm"] = watch.hwm()
    results["server_log"] = str(server.log_path)
    results["server_log_errors"] = log_errors(server.log_path)
    results["machine_after"] = machine()
    results["targets"] = evaluate(results)
    print_report(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0 if all(ok is not False for _, ok, _ in results["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
