"""The measurement behind the persistent index's design: band tables in SQLite vs sorted numpy segments.

Inserts N random (band key, document) rows into an indexed SQLite table (WAL) and,
alternatively, sorts them into a numpy segment; then looks up 2,000 keys in each.
A corpus of 1M articles holds about 1M × (25 article bands + ~10 paragraphs × 32
paragraph bands) ≈ 345M such rows.

    python benchmarks/bench_band_store.py [--rows N]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    n = parser.parse_args().rows
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, n, dtype=np.int64)
    items = rng.integers(0, 10**6, n, dtype=np.int64)
    probe = keys[rng.integers(0, n, 2000)]
    with tempfile.TemporaryDirectory() as folder:
        sqlite_rate, sqlite_lookup, sqlite_bytes = _sqlite(folder, keys, items, probe)
        numpy_rate, numpy_lookup = _segment(folder, keys, items, probe)
    print(f"rows {n:,}")
    print(f"SQLite (WAL, indexed):   {sqlite_rate:>12,.0f} rows/s   {sqlite_lookup * 1e6:6.2f} us/key   "
          f"{sqlite_bytes:5.1f} bytes/row")
    print(f"numpy sorted segment:    {numpy_rate:>12,.0f} rows/s   {numpy_lookup * 1e6:6.2f} us/key   "
          f"{16.0:5.1f} bytes/row")
    print(f"segment / SQLite: {numpy_rate / sqlite_rate:.1f}x ingest, {sqlite_lookup / numpy_lookup:.1f}x lookup, "
          f"{sqlite_bytes / 16:.1f}x smaller")


def _sqlite(folder, keys, items, probe):
    path = os.path.join(folder, "bands.sqlite")
    con = sqlite3.connect(path)
    con.execute("pragma journal_mode=wal")
    con.execute("pragma synchronous=normal")
    con.execute("create table band(key integer, item integer)")
    start = time.perf_counter()
    con.executemany("insert into band values (?, ?)", zip(keys.tolist(), items.tolist()))
    con.execute("create index band_key on band(key)")
    con.commit()
    rate = len(keys) / (time.perf_counter() - start)
    start = time.perf_counter()
    for key in probe.tolist():
        con.execute("select item from band where key = ?", (key,)).fetchall()
    lookup = (time.perf_counter() - start) / len(probe)
    size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    con.close()
    return rate, lookup, size / len(keys)


def _segment(folder, keys, items, probe):
    start = time.perf_counter()
    order = np.argsort(keys, kind="stable")
    np.save(os.path.join(folder, "keys.npy"), keys[order])
    np.save(os.path.join(folder, "items.npy"), items[order])
    rate = len(keys) / (time.perf_counter() - start)
    table = np.load(os.path.join(folder, "keys.npy"), mmap_mode="r")
    start = time.perf_counter()
    np.searchsorted(table, probe, "left")
    np.searchsorted(table, probe, "right")
    return rate, (time.perf_counter() - start) / len(probe)


if __name__ == "__main__":
    main()
