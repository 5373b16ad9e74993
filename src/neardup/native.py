"""The compiled extensions, or ``None`` where they were not built, and the one switch between them and numpy.

``_kernel.c`` (normalise, shingle, MinHash, split paragraphs, band tables and their look-ups) and
``_pairs.c`` (bucket keys, bucket pairs, exact pair scores, document frequencies, paragraph weights)
use the plain CPython API. setup.py builds them where it finds a C compiler; elsewhere every caller
takes its numpy path, which computes the same values (the tests hold the two equal). Callers ask
:func:`compiled` once per call, never per document: ``NEARDUP_KERNEL=0`` in the environment (read
once, at import) or :func:`force_numpy` sends every module down the numpy path.
"""

from __future__ import annotations

import os
from typing import Any

kernel: Any
pairs: Any
try:  # pragma: no branch - depends on the build
    from neardup import _kernel as kernel
except ImportError:  # built without a C compiler
    kernel = None
try:  # pragma: no branch - depends on the build
    from neardup import _pairs as pairs
except ImportError:
    pairs = None

_numpy_forced = os.environ.get("NEARDUP_KERNEL", "1") == "0"


def force_numpy(forced: bool) -> None:
    """Run the numpy path (True) or the compiled one where built (False), in every module."""
    global _numpy_forced
    _numpy_forced = bool(forced)


def built() -> bool:
    """Whether both extensions were built (whatever :func:`force_numpy` says)."""
    return kernel is not None and pairs is not None


def compiled() -> bool:
    """Whether the compiled extensions run (built, and not forced off)."""
    return built() and not _numpy_forced


__all__ = ["built", "compiled", "force_numpy", "kernel", "pairs"]
