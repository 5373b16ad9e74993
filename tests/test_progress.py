"""The progress line: share and ETA from bytes or from a count, shown on terminals, silent in pipes."""

from __future__ import annotations

import gzip
import io
import json

from neardup.cli.progress import Progress, switch, track
from neardup.io.formats import total_input_bytes
from neardup.io.reader import Reader


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _at(progress: Progress, seconds: float) -> float:
    """The monotonic time ``seconds`` after the progress started."""
    return progress._start + seconds


def test_progress_line_shows_rates_share_and_eta_when_enabled():
    """An enabled line shows documents, docs/s, MB/s, the share done from bytes and an ETA, with separators."""
    stream = _Terminal()
    progress = Progress("indexing", total_bytes=2_000_000_000, stream=stream, interval=0.0)
    progress.update(12_345, 1_000_000_000)
    progress.close()
    text = stream.getvalue()
    assert "indexing: 12,345 documents" in text and "docs/s" in text and "MB/s" in text
    assert "50 %" in text and "ETA" in text and text.startswith("\r") and text.endswith("\n")
    assert ", in 0:00:0" in text.splitlines()[-1]  # the final line says how long it took


def test_no_eta_before_a_second_or_three_percent():
    """The first frames show no ETA (a slow start would make a wild guess); later ones do."""
    progress = Progress("indexing", total_bytes=1_000_000, enabled=False)
    progress.update(10, 5_000)  # 0.5 %
    assert "ETA" not in progress.line(_at(progress, 0.2))
    assert "ETA 0:03:19" in progress.line(_at(progress, 1.0))  # 1 s for 0.5 %: 199 s to go
    progress.update(500, 100_000)  # 10 %
    assert "ETA 0:00:01" in progress.line(_at(progress, 0.2))


def test_eta_comes_from_bytes_not_documents():
    """The ETA follows the bytes read, whatever the documents count says."""
    progress = Progress("indexing", total_bytes=4_000_000, enabled=False)
    progress.update(1, 1_000_000)
    assert "25 %" in progress.line(_at(progress, 1.0)) and "ETA 0:00:03" in progress.line(_at(progress, 1.0))


def test_a_later_phase_counts_items():
    """A phase whose total is a count of items: 'comparing: 45 of 100 documents, ..., 45 %, ETA'."""
    progress = Progress("comparing", total=100, enabled=False)
    progress.update(45)
    line = progress.line(_at(progress, 9.0))
    assert line.startswith("comparing: 45 of 100 documents, 5 docs/s") and "45 %, ETA 0:00:11" in line
    assert progress.documents == 45 and "MB/s" not in line


def test_share_never_rounds_up_to_done():
    """99.9 % shows as 99 %, not 100 %, until the work is done."""
    progress = Progress("indexing", total_bytes=1000, enabled=False)
    progress.update(1, 999)
    assert "99 %" in progress.line()


def test_progress_is_silent_when_not_a_terminal():
    """In a pipe (not a TTY) nothing is written."""
    stream = io.StringIO()
    progress = Progress("indexing", stream=stream)
    progress.update(5, 100)
    progress.close()
    assert stream.getvalue() == ""


def test_forced_on_in_a_log_writes_plain_lines():
    """Forced on (--verbose) where stderr is not a terminal: whole lines, no carriage returns or escapes."""
    stream = io.StringIO()
    progress = Progress("indexing", stream=stream, enabled=switch(verbose=True), interval=0.0)
    progress.update(1_000, 0)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith("indexing: 1,000 documents") for line in lines)
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_quiet_silences_even_a_terminal_and_close_is_once():
    """--quiet turns the line off on a terminal; close writes the final line only once."""
    quiet, shown = _Terminal(), _Terminal()
    Progress("indexing", stream=quiet, enabled=switch(quiet=True), interval=0.0).update(3, 3)
    progress = Progress("indexing", stream=shown, enabled=switch(), interval=1e9)
    progress.close()
    progress.close()
    assert quiet.getvalue() == "" and shown.getvalue().count("\n") == 1
    assert switch() is None and switch(quiet=True, verbose=True) is False


def test_track_reports_the_bytes_of_a_compressed_input(tmp_path):
    """Reading a .jsonl.gz through track(): the share comes from compressed bytes and reaches 100 %."""
    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(json.dumps({"id": i, "text": f"Text {i}."}).encode() + b"\n"
                                            for i in range(5000))))
    reader = Reader()
    progress = Progress("indexing", total_bytes=total_input_bytes([str(path)]), enabled=False)
    shares = []
    for _ in track(reader.documents([str(path)]), progress, lambda: reader.stats.source_bytes):
        shares.append(progress.share())
    assert progress.done == 5000 and shares[0] > 0 and shares == sorted(shares) and progress.share() == 1.0
