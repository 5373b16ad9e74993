"""``OUTPUT.meta.json``: what produced an output, written beside it.

Every file ``neardup dedup`` writes (KEPT and CLUSTERS, on this machine) gets a sidecar named after
it: the neardup version, the command and its arguments, the options that decide the result (what
``--config`` reads back, so ``neardup dedup INPUT... --config clusters.jsonl.meta.json --out ...
--clusters ...`` repeats the run), the full configuration, the inputs with their sizes, the counts
and the seconds of each stage. Output paths and message options are recorded, not replayed. An
output on standard output gets none.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from neardup import __version__
from neardup.config import Config
from neardup.io.writers import atomic_path

#: Options recorded but not replayed by ``--config``: where the outputs and messages go.
NOT_REPLAYED = frozenset({"inputs", "out", "clusters", "config", "quiet", "verbose", "no_progress", "log_file",
                          "json", "run", "command", "argv"})


def sidecar_path(output: str) -> str | None:
    """Where the sidecar of ``output`` goes (None for standard output)."""
    return None if output == "-" else f"{output}.meta.json"


def sidecar_paths(outputs: Sequence[str]) -> list[str]:
    return [path for path in map(sidecar_path, outputs) if path is not None]


def write_sidecars(outputs: Sequence[str], args: argparse.Namespace, config: Config, summary: Any) -> None:
    """One sidecar per output (see the module docstring)."""
    options = {key: value for key, value in sorted(vars(args).items())
               if key not in NOT_REPLAYED and value is not None and not callable(value)}
    record = {
        "neardup": __version__,
        "command": args.command,
        "argv": getattr(args, "argv", None),
        "options": options,
        "config": config.to_dict(),
        "inputs": [{"path": path, "bytes": _size(path)} for path in args.inputs],
        "outputs": {"kept": args.out, "clusters": args.clusters},
        "counts": {"documents": summary.documents, "clusters": summary.clusters, "removed": summary.removed,
                   "removed_by_kind": dict(summary.by_kind), "kept_for_loss": summary.kept_for_loss,
                   "figures_differ": summary.figures_differ, "skipped": dict(summary.skipped)},
        "seconds": dict(summary.seconds),
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    text = json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n"
    for path in sidecar_paths(outputs):
        with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path) if os.path.isfile(path) else None
    except OSError:
        return None
