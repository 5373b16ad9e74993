"""The fingerprint stage run in worker processes."""

from __future__ import annotations

import glob

import numpy as np

from neardup import Config, Document
from neardup.sketch.fingerprint import fingerprint, fingerprint_stream


def test_stream_with_workers_leaves_no_shared_memory_behind() -> None:
    """Workers hand fingerprints back in shared-memory blocks; every block is freed, also when the
    consumer stops early."""
    before = set(glob.glob("/dev/shm/psm_*"))
    batches = [[Document.from_text(f"{b}-{i}", f"story {b} number {i} with some words in it") for i in range(20)]
               for b in range(8)]
    config = Config()
    streamed = list(fingerprint_stream(batches, config, workers=2))
    assert [batch for batch, _ in streamed] == batches
    for batch, prints in streamed:
        np.testing.assert_array_equal(prints.doc_signatures, fingerprint(batch, config).doc_signatures)
    stream = fingerprint_stream(batches, config, workers=2)
    next(stream)
    stream.close()  # the consumer stops after one batch
    assert set(glob.glob("/dev/shm/psm_*")) <= before
