"""What dedup removes, judged over the kept corpus: every keep policy on the shared corpora.

For each corpus of ../shared/data (not shipped with neardup: the texts belong to their
publishers; the script says so and stops when they are missing) and each policy, runs
``neardup dedup`` as a user would (a subprocess, timed), then:

* the independent judge (``benchmarks/judge.py``, which imports nothing from neardup): removals
  that lose text (over a quarter of their words in no 5-gram of any kept document), unjustified
  removals, and the share of removed words gone — beside the pair-by-pair share (words in no
  5-gram of the document's own representative);
* on ``syndication-dev``, with its truth file: pairwise precision, recall and F1 over same-story
  pairs, recall per kind of copy, and in how many clusters holding a story's original the
  original is the kept document.

    python benchmarks/bench_removals.py [--data ../shared/data] [--keep first,longest,earliest,cleanest]
                                        [--corpora syndication-dev,reuters21578,...] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[0] / ".." / "shared" / "data"
CORPORA = ("syndication-dev", "reuters21578", "bbc-news", "news-scrape-2019-06-01")
POLICIES = ("first", "longest", "earliest", "cleanest")


def run_dedup(corpus: Path, keep: str, folder: Path) -> tuple[Path, dict[str, Any], float]:
    """neardup dedup on one corpus: the CLUSTERS file, the JSON summary, wall seconds."""
    clusters = folder / f"{corpus.stem}.{keep}.clusters.jsonl"
    command = [sys.executable, "-m", "neardup", "dedup", str(corpus), "--out", str(folder / "kept.jsonl"),
               "--clusters", str(clusters), "--keep", keep, "--json", "-q"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return clusters, json.loads(done.stdout), time.perf_counter() - start


def judge(corpus: Path, clusters: Path, folder: Path) -> dict[str, Any]:
    out = folder / "judge.json"
    subprocess.run([sys.executable, str(HERE / "judge.py"), str(corpus), str(clusters), "--json", str(out)],
                   capture_output=True, check=True)
    figures: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return figures


def syndication_scores(truth_path: Path, clusters_path: Path) -> dict[str, Any]:
    """Pairwise precision/recall/F1 over same-story pairs, recall per kind, originals kept."""
    truth = {r["id"]: r for r in map(json.loads, truth_path.read_text(encoding="utf-8").splitlines())}
    rows = [json.loads(line) for line in clusters_path.read_text(encoding="utf-8").splitlines()]
    cluster = {r["id"]: r["cluster"] for r in rows}
    stories: dict[str, list[str]] = defaultdict(list)
    for id, t in truth.items():
        stories[t["story"]].append(id)
    same_story = {frozenset(p) for ids in stories.values() for p in itertools.combinations(sorted(ids), 2)}
    members: dict[str, list[str]] = defaultdict(list)
    for id, c in cluster.items():
        members[c].append(id)
    same_cluster = {frozenset(p) for ids in members.values() for p in itertools.combinations(sorted(ids), 2)}
    hits = len(same_story & same_cluster)
    precision = hits / len(same_cluster) if same_cluster else 1.0
    recall = hits / len(same_story) if same_story else 1.0
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for id, t in truth.items():
        if t["kind"] != "original" and t["story"] in cluster:
            total[t["kind"]] += 1
            found[t["kind"]] += cluster[id] == cluster[t["story"]]
    holding = [c for c, ids in members.items() if len(ids) > 1 and any(truth[i]["kind"] == "original" for i in ids)]
    original_kept = sum(truth[c]["kind"] == "original" for c in holding)
    return {"precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
            "recall_by_kind": {k: round(found[k] / total[k], 3) for k in sorted(total)},
            "original_kept": original_kept, "clusters_with_original": len(holding)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default ../shared/data)")
    parser.add_argument("--keep", default=",".join(POLICIES), help="comma-separated policies")
    parser.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated corpus names in --data")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to FILE")
    args = parser.parse_args()
    missing = [name for name in args.corpora.split(",") if not (args.data / f"{name}.jsonl").exists()]
    if missing:
        print(f"bench_removals: the shared data is missing ({', '.join(missing)} in {args.data}); nothing to judge",
              file=sys.stderr)
        return 2
    results = []
    header = (f"{'corpus':<24}{'keep':<10}{'removed':>8}{'kept for loss':>14}{'lose text':>10}{'unjustified':>12}"
              f"{'words gone':>11}{'pairwise':>9}{'seconds':>8}")
    print(header)
    with tempfile.TemporaryDirectory(prefix="bench-removals-") as tmp:
        folder = Path(tmp)
        for name in args.corpora.split(","):
            corpus = args.data / f"{name}.jsonl"
            for keep in args.keep.split(","):
                clusters, summary, seconds = run_dedup(corpus, keep, folder)
                judged = judge(corpus, clusters, folder)
                row: dict[str, Any] = {"corpus": name, "keep": keep, "removed": summary["removed"],
                                       "kept_for_loss": summary.get("kept_for_loss", 0), "seconds": round(seconds, 2),
                                       "lose_text": judged["lose_text"]["count"],
                                       "unjustified": judged["unjustified"]["count"],
                                       "words_gone_percent": judged["removed_words_gone_percent"],
                                       "pairwise_gone_percent": judged["pairwise_words_gone_percent"]}
                truth = args.data / f"{name}.truth.jsonl"
                if truth.exists():
                    row["truth"] = syndication_scores(truth, clusters)
                results.append(row)
                print(f"{name:<24}{keep:<10}{row['removed']:>8}{row['kept_for_loss']:>14}{row['lose_text']:>10}"
                      f"{row['unjustified']:>12}{row['words_gone_percent']:>10.2f}%{row['pairwise_gone_percent']:>8.2f}%"
                      f"{row['seconds']:>8.1f}")
                if "truth" in row:
                    t = row["truth"]
                    print(f"{'':<34}P {t['precision']} R {t['recall']} F1 {t['f1']}, recall by kind "
                          f"{t['recall_by_kind']}, original kept in {t['original_kept']}/{t['clusters_with_original']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
