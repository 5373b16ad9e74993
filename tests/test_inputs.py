"""Tests of neardup.inputs.Reader: formats, fields, bad records, strict mode, limits."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neardup.document import Document
from neardup.errors import InputError, RecordError
from neardup.io.reader import Reader

GOOD_A = b'{"id": "a", "text": "First good record with several words."}'
GOOD_C = b'{"id": "c", "text": "Third good record with several words."}'


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _read(sources, **options):
    """Read every source with on_skip collecting; return (documents, skips, reader)."""
    skips: list[RecordError] = []
    reader = Reader(on_skip=skips.append, **options)
    documents = list(reader.documents(sources))
    return documents, skips, reader


def _jsonl(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


# --------------------------------------------------------------------------- formats


def test_jsonl_id_and_text(tmp_path):
    """A JSON Lines file gives one Document per line with the id and text of that line, in order."""
    path = _write(tmp_path / "c.jsonl", _jsonl({"id": "one", "text": "Alpha paragraph.\nBeta paragraph."},
                                                {"id": "two", "text": "Gamma."}))
    documents, skips, reader = _read([path])
    assert [d.id for d in documents] == ["one", "two"]
    assert documents[0].text == "Alpha paragraph.\nBeta paragraph."
    assert [documents[0].paragraph_text(i) for i in range(2)] == ["Alpha paragraph.", "Beta paragraph."]
    assert skips == [] and reader.stats.read == 2 and not reader.stats.skipped
    assert reader.stats.summary() == "read 2 documents"


def test_custom_id_and_text_fields(tmp_path):
    """id_field/text_field (the --id-field/--text-field options) choose which JSON fields are read."""
    path = _write(tmp_path / "c.jsonl", _jsonl({"url": "u1", "body": "Body text here.", "id": "ignored",
                                                "text": "not this"}))
    documents, skips, _ = _read([path], id_field="url", text_field="body")
    assert skips == []
    assert [(d.id, d.text) for d in documents] == [("u1", "Body text here.")]
    assert documents[0].metadata == {"id": "ignored", "text": "not this"}


def test_custom_fields_missing_are_reported(tmp_path):
    """With a custom id field, a record lacking it is skipped naming that field."""
    path = _write(tmp_path / "c.jsonl", _jsonl({"id": "x", "text": "Some text."}))
    documents, skips, _ = _read([path], id_field="url")
    assert documents == []
    assert len(skips) == 1 and "'url'" in str(skips[0]) and str(skips[0]).startswith(f"{path}:1: ")


def test_other_fields_kept_as_metadata(tmp_path):
    """Fields other than id and text are kept as the document's metadata, values unchanged."""
    record = {"id": "m", "text": "Some text.", "source": "Wire", "date": "2026-03-14", "tags": ["a", 1],
              "extra": {"n": 2}}
    path = _write(tmp_path / "c.jsonl", _jsonl(record))
    (document,), _, _ = _read([path])
    assert document.metadata == {"source": "Wire", "date": "2026-03-14", "tags": ["a", 1], "extra": {"n": 2}}


def test_integer_id_becomes_string(tmp_path):
    """An integer id is accepted and turned into its decimal string."""
    path = _write(tmp_path / "c.jsonl", _jsonl({"id": 42, "text": "Text."}))
    (document,), skips, _ = _read([path])
    assert document.id == "42" and skips == []


def test_text_list_one_paragraph_per_item(tmp_path):
    """Text given as a list of strings makes one paragraph per item, even when an item holds line breaks."""
    items = ["Headline of the story", "First paragraph\nwrapped over two lines.", "  Last paragraph.  "]
    path = _write(tmp_path / "c.jsonl", _jsonl({"id": "p", "text": items}))
    (document,), skips, _ = _read([path])
    assert skips == []
    assert len(document.paragraphs) == 3
    assert [document.paragraph_text(i) for i in range(3)] == [item.strip() for item in items]


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"),
                        min_size=1, max_size=40).filter(lambda s: s.strip()), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_text_list_property(items):
    """For any list of non-blank paragraphs, paragraph i of the document is item i, trimmed."""
    data = _jsonl({"id": "p", "text": items})
    (document,), skips, _ = _read(["-"], stdin=io.BytesIO(data))
    assert skips == []
    assert [document.paragraph_text(i) for i in range(len(document.paragraphs))] == [s.strip() for s in items]


def test_jsonl_gz(tmp_path):
    """A .jsonl.gz file is decompressed and read like plain JSON Lines."""
    path = _write(tmp_path / "c.jsonl.gz", gzip.compress(_jsonl({"id": "g1", "text": "Zipped one."},
                                                                 {"id": "g2", "text": "Zipped two."})))
    documents, skips, _ = _read([path])
    assert [(d.id, d.text) for d in documents] == [("g1", "Zipped one."), ("g2", "Zipped two.")]
    assert skips == []


def test_ndjson_suffix_is_json_lines(tmp_path):
    """A .ndjson file is read as JSON Lines, not as one text document."""
    path = _write(tmp_path / "c.ndjson", _jsonl({"id": "n", "text": "Newline delimited."}))
    documents, _, _ = _read([path])
    assert [d.id for d in documents] == ["n"]


def test_plain_txt_id_is_path(tmp_path):
    """A .txt file is one document whose id is the path as given and whose text is the file's text."""
    text = "Headline\n\nFirst paragraph of the story.\nSecond paragraph.\n"
    path = _write(tmp_path / "story.txt", text.encode())
    (document,), skips, _ = _read([path])
    assert document.id == path and document.text == text and skips == []
    assert [document.paragraph_text(i) for i in range(len(document.paragraphs))] == [
        "Headline", "First paragraph of the story.", "Second paragraph."]


def test_txt_with_bom_drops_bom(tmp_path):
    """A UTF-8 byte-order mark at the start of a .txt file is not part of the text."""
    path = _write(tmp_path / "bom.txt", "\ufeffCafé story.".encode())
    (document,), _, _ = _read([path])
    assert document.text == "Café story."


def test_folder_mixed_sorted(tmp_path):
    """A folder is walked recursively in sorted path order, reading known formats (CSV too) and ignoring others."""
    folder = tmp_path / "corpus"
    _write(folder / "b.jsonl", _jsonl({"id": "b1", "text": "B one."}, {"id": "b2", "text": "B two."}))
    _write(folder / "a.txt", b"A text file.")
    _write(folder / "c" / "d.txt", b"Nested text file.")
    _write(folder / "c" / "e.jsonl.gz", gzip.compress(_jsonl({"id": "e1", "text": "E one."})))
    _write(folder / "notes.csv", b"id,text\nz,A row of a CSV file.\n")
    _write(folder / "image.dat", b"\x00\x01ignored")
    documents, skips, _ = _read([str(folder)])
    assert [d.id for d in documents] == [str(folder / "a.txt"), "b1", "b2", str(folder / "c" / "d.txt"), "e1", "z"]
    assert skips == []


def test_folder_without_known_files(tmp_path):
    """A folder holding no readable file types raises InputError naming the folder."""
    _write(tmp_path / "only.dat", b"a,b\n")
    with pytest.raises(InputError, match=r"no \.jsonl"):
        list(Reader().documents([str(tmp_path)]))


def test_several_sources_in_order(tmp_path):
    """Sources are read in the order given."""
    first = _write(tmp_path / "z.jsonl", _jsonl({"id": "z", "text": "Zed."}))
    second = _write(tmp_path / "a.txt", b"Ay.")
    documents, _, _ = _read([first, second])
    assert [d.id for d in documents] == ["z", second]


def test_stdin_json_lines():
    """Stdin starting with '{' is read as JSON Lines, with '-' as the source in messages."""
    data = b'\n{"id": "s1", "text": "From stdin."}\n{oops\n{"id": "s2", "text": "Also."}\n'
    documents, skips, _ = _read(["-"], stdin=io.BytesIO(data))
    assert [d.id for d in documents] == ["s1", "s2"]
    assert [str(s).split(": ")[0] for s in skips] == ["-:3"]


def test_stdin_plain_text():
    """Stdin not starting with '{' is one plain-text document with id '-'."""
    text = "A story from stdin.\nSecond paragraph."
    (document,), skips, _ = _read(["-"], stdin=io.BytesIO(text.encode()))
    assert document.id == "-" and document.text == text and skips == []


def test_missing_file_raises_input_error(tmp_path):
    """A source that does not exist raises InputError naming it, whatever its suffix."""
    for name in ("missing.jsonl", "missing.txt", "missing.jsonl.gz"):
        source = str(tmp_path / name)
        with pytest.raises(InputError) as info:
            list(Reader().documents([source]))
        assert source in str(info.value)
        assert not isinstance(info.value, RecordError)


def test_missing_file_raises_even_when_not_strict(tmp_path):
    """A missing file is an input error, not a skipped record, also when strict is off."""
    skips: list[RecordError] = []
    with pytest.raises(InputError):
        list(Reader(on_skip=skips.append).documents([str(tmp_path / "nope.jsonl")]))
    assert skips == []


# --------------------------------------------------------------------------- bad records

BAD_LINES = {
    "malformed JSON": (b'{"id": "b", "text": "unterminated', "not valid JSON"),
    "not an object (list)": (b'["b", "text"]', "expected a JSON object, got list"),
    "not an object (string)": (b'"just a string"', "expected a JSON object, got str"),
    "missing id": (b'{"text": "No id here."}', "missing field 'id'"),
    "missing text": (b'{"id": "b"}', "missing field 'text'"),
    "text is a number": (b'{"id": "b", "text": 12}', "'text' must be a string or a list of strings"),
    "text is null": (b'{"id": "b", "text": null}', "'text' must be a string or a list of strings"),
    "text list with a number": (b'{"id": "b", "text": ["ok", 3]}', "'text' must be a string or a list"),
    "empty text": (b'{"id": "b", "text": ""}', "empty text"),
    "whitespace-only text": (b'{"id": "b", "text": "  \\n\\t  "}', "empty text"),
    "empty paragraph list": (b'{"id": "b", "text": []}', "empty text"),
    "NUL in text": (b'{"id": "b", "text": "abc\\u0000def"}', "binary content"),
    "control characters": (b'{"id": "b", "text": "\\u0001\\u0002\\u0003\\u0004ab"}', "binary content"),
    "raw NUL bytes": (b'\x00\x00\x00\x01\x02', "not valid JSON"),
    "invalid UTF-8": (b'{"id": "b", "text": "caf\xe9 au lait"}', "invalid UTF-8"),
    "boolean id": (b'{"id": true, "text": "Text."}', "'id' must be a non-empty string or integer"),
    "empty id": (b'{"id": "", "text": "Text."}', "'id' must be a non-empty string or integer"),
}


@pytest.mark.parametrize("line, reason", list(BAD_LINES.values()), ids=list(BAD_LINES))
def test_bad_record_skipped_with_place_and_reason(tmp_path, line, reason):
    """A bad line is skipped, counted, and reported as 'file:line: reason'; its neighbours are read."""
    path = _write(tmp_path / "c.jsonl", GOOD_A + b"\n" + line + b"\n" + GOOD_C + b"\n")
    documents, skips, reader = _read([path])
    assert [d.id for d in documents] == ["a", "c"]
    assert len(skips) == 1
    problem = skips[0]
    assert (problem.source, problem.line) == (path, 2)
    assert str(problem).startswith(f"{path}:2: ")
    assert reason in str(problem)
    assert reader.stats.read == 2 and sum(reader.stats.skipped.values()) == 1
    assert "skipped 1" in reader.stats.summary()


@pytest.mark.parametrize("line, reason", list(BAD_LINES.values()), ids=list(BAD_LINES))
def test_bad_record_strict_raises(tmp_path, line, reason):
    """In strict mode the first bad record raises RecordError naming file and line, after the good ones before it."""
    path = _write(tmp_path / "c.jsonl", GOOD_A + b"\n" + line + b"\n" + GOOD_C + b"\n")
    seen = []
    reader = Reader(strict=True)
    with pytest.raises(RecordError) as info:
        for document in reader.documents([path]):
            seen.append(document.id)
    assert seen == ["a"]
    assert str(info.value).startswith(f"{path}:2: ") and reason in str(info.value)
    assert not reader.stats.skipped


def test_skip_counts_grouped_by_reason(tmp_path):
    """Skips are counted per reason, without the specifics, and the summary lists them."""
    lines = [GOOD_A, b"{bad", b"{worse", b'{"id": "x"}', b"[1]"]
    path = _write(tmp_path / "c.jsonl", b"\n".join(lines) + b"\n")
    _, skips, reader = _read([path])
    assert len(skips) == 4
    assert reader.stats.skipped == {"not valid JSON": 2, "missing field 'text'": 1, "expected a JSON object": 1}
    summary = reader.stats.summary()
    assert summary.startswith("read 1 documents, skipped 4 (") and "2 not valid JSON" in summary


def test_skips_counted_without_callback(tmp_path):
    """Without an on_skip callback bad records are still counted, and nothing is raised."""
    path = _write(tmp_path / "c.jsonl", GOOD_A + b"\n{bad\n")
    reader = Reader()
    assert [d.id for d in reader.documents([path])] == ["a"]
    assert sum(reader.stats.skipped.values()) == 1


def test_line_numbers_count_blank_and_crlf_lines(tmp_path):
    """Line numbers are physical lines: blank lines count, CRLF endings are accepted and not skipped."""
    data = b'{"id": "a", "text": "A."}\r\n\r\n   \n{broken\r\n{"id": "b", "text": "B."}'
    path = _write(tmp_path / "c.jsonl", data)
    documents, skips, reader = _read([path])
    assert [d.id for d in documents] == ["a", "b"]
    assert [s.line for s in skips] == [4]
    assert reader.stats.read == 2


def test_invalid_utf8_txt_file(tmp_path):
    """A .txt file that is not UTF-8 is skipped with the file named and 'invalid UTF-8'."""
    path = _write(tmp_path / "latin1.txt", "Café in Lisboa, açúcar.".encode("latin-1"))
    documents, skips, reader = _read([path])
    assert documents == []
    assert len(skips) == 1 and str(skips[0]).startswith(f"{path}: ") and "invalid UTF-8" in str(skips[0])
    assert reader.stats.skipped == {"invalid UTF-8": 1}


@pytest.mark.parametrize("data", [b"\x00\x01\x02PNG\x00\x00data", bytes(range(1, 32)) * 4 + b"some words"],
                         ids=["NUL bytes", "control characters"])
def test_binary_txt_file(tmp_path, data):
    """A .txt file holding binary junk (NUL or many control characters) is skipped as binary content."""
    path = _write(tmp_path / "junk.txt", data)
    documents, skips, _ = _read([path])
    assert documents == []
    assert len(skips) == 1 and "binary content" in str(skips[0]) and path in str(skips[0])


def test_few_control_characters_are_text(tmp_path):
    """A stray control character in an otherwise normal text does not make it binary."""
    text = "A normal paragraph of plain news text with one escape character \x1b in it." * 3
    path = _write(tmp_path / "ok.txt", text.encode())
    documents, skips, _ = _read([path])
    assert len(documents) == 1 and skips == []


def test_ten_percent_control_characters_is_binary(tmp_path):
    """A text where about a tenth of the characters are control characters is binary junk."""
    text = ("abcdefghi\x07" * 40).encode()
    path = _write(tmp_path / "bell.txt", text)
    documents, skips, _ = _read([path])
    assert documents == [] and "binary content" in str(skips[0])


def test_empty_txt_file(tmp_path):
    """An empty or whitespace-only .txt file is skipped as empty text."""
    path = _write(tmp_path / "empty.txt", b" \n\n\t ")
    documents, skips, _ = _read([path])
    assert documents == [] and "empty text" in str(skips[0])


def test_duplicate_ids_skipped_naming_first(tmp_path):
    """With unique_ids, a repeated id is skipped and the message names where it was first seen, across files."""
    first = _write(tmp_path / "a.jsonl", _jsonl({"id": "x", "text": "One."}, {"id": "y", "text": "Two."}))
    second = _write(tmp_path / "b.jsonl", _jsonl({"id": "z", "text": "Three."}, {"id": "x", "text": "Again."}))
    documents, skips, reader = _read([first, second], unique_ids=True)
    assert [d.id for d in documents] == ["x", "y", "z"]
    assert documents[0].text == "One."
    assert len(skips) == 1
    message = str(skips[0])
    assert message.startswith(f"{second}:2: ") and "duplicate id 'x'" in message and f"first at {first}:1" in message
    assert reader.stats.skipped == {"duplicate id": 1}


def test_duplicate_ids_strict_raises(tmp_path):
    """With unique_ids and strict, a repeated id raises RecordError."""
    path = _write(tmp_path / "a.jsonl", _jsonl({"id": "x", "text": "One."}, {"id": "x", "text": "Two."}))
    with pytest.raises(RecordError, match=r":2: duplicate id 'x' \(first at .*:1\)"):
        list(Reader(unique_ids=True, strict=True).documents([path]))


def test_duplicate_ids_kept_without_unique_ids(tmp_path):
    """Without unique_ids, repeated ids are all read."""
    path = _write(tmp_path / "a.jsonl", _jsonl({"id": "x", "text": "One."}, {"id": "x", "text": "Two."}))
    documents, skips, _ = _read([path])
    assert [d.text for d in documents] == ["One.", "Two."] and skips == []


def test_duplicate_integer_and_string_id(tmp_path):
    """An integer id and the same digits as a string are the same id."""
    path = _write(tmp_path / "a.jsonl", _jsonl({"id": 7, "text": "One."}, {"id": "7", "text": "Two."}))
    documents, skips, _ = _read([path], unique_ids=True)
    assert [d.text for d in documents] == ["One."] and len(skips) == 1


def test_truncated_gz_reported_not_crashed(tmp_path):
    """A truncated .jsonl.gz yields the records before the cut and counts one skip naming the file."""
    records = _jsonl(*({"id": f"d{i}", "text": f"Record number {i} of the archive."} for i in range(3000)))
    compressed = gzip.compress(records)
    path = _write(tmp_path / "cut.jsonl.gz", compressed[: len(compressed) // 2])
    documents, skips, reader = _read([path])
    assert 0 < len(documents) < 3000
    assert [d.id for d in documents] == [f"d{i}" for i in range(len(documents))]
    assert len(skips) == 1 and str(skips[0]).startswith(f"{path}: ") and "cannot read the rest" in str(skips[0])
    assert reader.stats.skipped == {"cannot read the rest": 1}
    with pytest.raises(RecordError):
        list(Reader(strict=True).documents([path]))


def test_gz_suffix_on_non_gzip_data(tmp_path):
    """A .jsonl.gz file that is not gzip data is reported as a skip, not raised."""
    path = _write(tmp_path / "fake.jsonl.gz", b'{"id": "a", "text": "plain"}\n')
    documents, skips, _ = _read([path])
    assert documents == [] and len(skips) == 1 and path in str(skips[0])


def test_record_over_max_bytes_skipped(tmp_path):
    """A JSON line longer than max_record_bytes is skipped as too large; shorter lines are read."""
    big = json.dumps({"id": "big", "text": "word " * 100}).encode()
    path = _write(tmp_path / "c.jsonl", GOOD_A + b"\n" + big + b"\n" + GOOD_C + b"\n")
    documents, skips, reader = _read([path], max_record_bytes=200)
    assert [d.id for d in documents] == ["a", "c"]
    assert len(skips) == 1 and skips[0].line == 2 and "exceeds the limit of 200 bytes" in str(skips[0])
    assert reader.stats.skipped == {"record too large": 1}


def test_record_at_max_bytes_accepted(tmp_path):
    """A line (with its newline) of exactly max_record_bytes is accepted; one byte more is not."""
    line = GOOD_A + b"\n"
    path = _write(tmp_path / "c.jsonl", line)
    assert len(_read([path], max_record_bytes=len(line))[0]) == 1
    assert len(_read([path], max_record_bytes=len(line) - 1)[0]) == 0


def test_txt_over_max_bytes_skipped(tmp_path):
    """A .txt file larger than max_record_bytes is skipped as too large."""
    path = _write(tmp_path / "big.txt", b"word " * 100)
    documents, skips, reader = _read([path], max_record_bytes=100)
    assert documents == [] and "exceeds the limit" in str(skips[0])
    assert reader.stats.skipped == {"record too large": 1}


def test_strict_stops_at_first_bad_record(tmp_path):
    """Strict mode raises at the first bad record and reads nothing after it."""
    path = _write(tmp_path / "c.jsonl", GOOD_A + b"\n[1]\n{bad\n" + GOOD_C + b"\n")
    reader = Reader(strict=True)
    seen = []
    with pytest.raises(RecordError) as info:
        for document in reader.documents([path]):
            seen.append(document.id)
    assert seen == ["a"] and info.value.line == 2 and info.value.source == path


def test_huge_integer_skipped_not_crashed(tmp_path):
    """A record whose JSON holds an integer too long for Python (>4300 digits) is skipped, not a crash."""
    path = _write(tmp_path / "c.jsonl", GOOD_A + b'\n{"id": ' + b"1" * 5000 + b', "text": "x y"}\n' + GOOD_C + b"\n")
    documents, skips, _ = _read([path])
    assert [d.id for d in documents] == ["a", "c"]
    assert len(skips) == 1 and skips[0].line == 2


def test_jsonl_file_with_bom(tmp_path):
    """A JSON Lines file starting with a UTF-8 byte-order mark has its first record read (as .txt files do)."""
    path = _write(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + GOOD_A + b"\n" + GOOD_C + b"\n")
    documents, skips, _ = _read([path])
    assert [d.id for d in documents] == ["a", "c"] and skips == []


def test_stdin_json_lines_with_bom():
    """JSON Lines on stdin starting with a UTF-8 byte-order mark is read as JSON Lines, not as one text."""
    documents, skips, _ = _read(["-"], stdin=io.BytesIO(b"\xef\xbb\xbf" + GOOD_A + b"\n" + GOOD_C + b"\n"))
    assert [d.id for d in documents] == ["a", "c"] and skips == []


# --------------------------------------------------------------------------- properties

_good_record = st.builds(
    lambda n, words: json.dumps({"id": f"r{n}", "text": " ".join(words)}).encode(),
    st.integers(0, 10**6),
    st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzé ", min_size=1, max_size=8).filter(str.strip),
             min_size=1, max_size=6),
)


def _corrupt(draw, good: bytes) -> bytes:
    how = draw(st.sampled_from(["truncate", "garbage", "bytes", "nul", "not-object", "no-text", "bad-utf8"]))
    if how == "truncate":
        return good[: draw(st.integers(1, len(good) - 1))]
    if how == "garbage":
        return b"x" + draw(st.text(max_size=30)).encode("utf-8").replace(b"\n", b" ")
    if how == "bytes":
        return b"\x01" + draw(st.binary(max_size=30)).replace(b"\n", b"\x00")
    if how == "nul":
        return good.replace(b'"text": "', b'"text": "\\u0000', 1)
    if how == "not-object":
        return b"[" + good + b"]"
    if how == "no-text":
        return good.replace(b'"text"', b'"txet"', 1)
    return good[:-2] + b"\xff" + good[-2:]


@st.composite
def _jsonl_with_corruption(draw):
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["good", "good", "bad", "blank"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from([b"", b"   ", b"\t", b"\r"])))
        elif kind == "good":
            lines.append(draw(_good_record))
        else:
            lines.append(_corrupt(draw, draw(_good_record)))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    return lines, ending


@given(_jsonl_with_corruption(), st.booleans())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_read_plus_skipped_is_non_blank_lines(case, strict):
    """For any JSON Lines with corrupted lines: read + skipped == non-blank lines, no exception unless strict."""
    lines, ending = case
    data = ending.join(lines) + ending
    non_blank = sum(1 for line in lines if line.strip())
    skips: list[RecordError] = []
    reader = Reader(on_skip=skips.append, strict=strict, stdin=io.BytesIO(data))
    source = "-" if data.lstrip()[:1] == b"{" else None
    if source is None:  # stdin would be sniffed as plain text; test the same bytes as a .jsonl file instead
        return _check_file(lines, ending, strict)
    try:
        documents = list(reader.documents([source]))
    except RecordError:
        assert strict
        return
    assert reader.stats.read == len(documents)
    assert reader.stats.read + sum(reader.stats.skipped.values()) == non_blank
    assert len(skips) == sum(reader.stats.skipped.values())
    assert all(isinstance(d, Document) for d in documents)
    for problem in skips:
        assert problem.line is not None and lines[problem.line - 1].strip()
        assert str(problem).startswith(f"-:{problem.line}: ")


def _check_file(lines, ending, strict):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "p.jsonl")
        Path(path).write_bytes(ending.join(lines) + ending)
        reader = Reader(strict=strict)
        try:
            documents = list(reader.documents([path]))
        except RecordError:
            assert strict
            return
        non_blank = sum(1 for line in lines if line.strip())
        assert reader.stats.read == len(documents)
        assert reader.stats.read + sum(reader.stats.skipped.values()) == non_blank


@given(st.lists(_good_record, min_size=1, max_size=10), st.data())
@settings(max_examples=60, deadline=None)
def test_property_good_lines_survive_corruption(goods, data):
    """Corrupting some lines never loses or reorders the good ones: the read ids are exactly the good lines' ids."""
    lines, expected = [], []
    for good in goods:
        if data.draw(st.booleans()):
            lines.append(_corrupt(data.draw, good))
        else:
            lines.append(good)
            expected.append(json.loads(good)["id"])
    stream = io.BytesIO(b'{"id": "head", "text": "Head."}\n' + b"\n".join(lines) + b"\n")
    documents, skips, _ = _read(["-"], stdin=stream)
    assert [d.id for d in documents] == ["head", *expected]
    assert len(skips) == len(goods) - len(expected)


# --------------------------------------------------------------------------- CSV and Parquet

def test_csv_and_tsv_rows_with_metadata_and_counted_skips(tmp_path):
    """CSV/TSV rows become documents (other columns metadata); an empty text is a counted skip with its line."""
    csv_path = _write(tmp_path / "a.csv", b'id,text,source\nx,"Quoted, with a comma.",wire\ny,,wire\n')
    tsv_path = _write(tmp_path / "b.tsv", b"id\ttext\nz\tTab separated text.\n")
    documents, skips, _ = _read([csv_path, tsv_path])
    assert [(d.id, d.text, d.metadata) for d in documents] == [
        ("x", "Quoted, with a comma.", {"source": "wire"}), ("z", "Tab separated text.", {})]
    assert [(s.line, s.reason) for s in skips] == [(3, "empty text")]


def test_parquet_rows_are_documents(tmp_path):
    """A Parquet file's rows are read with the same fields and checks as JSON Lines."""
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet
    table = pyarrow.table({"id": ["p1", "p2"], "text": ["Parquet text one.", ""], "year": [2020, 2021]})
    path = tmp_path / "c.parquet"
    parquet.write_table(table, path)
    documents, skips, _ = _read([str(path)])
    assert [(d.id, d.metadata) for d in documents] == [("p1", {"year": 2020})]
    assert [s.reason for s in skips] == ["empty text"]


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    """Without pyarrow, reading Parquet is an input error that names the extra to install."""
    import sys
    for name in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)  # 'import pyarrow' now raises ImportError
    path = _write(tmp_path / "d.parquet", b"PAR1")
    with pytest.raises(InputError, match=r"neardup\[parquet\]"):
        list(Reader().documents([path]))


@given(st.text(alphabet=st.characters(max_codepoint=0x3000), max_size=300))
def test_control_share_counts_controls_text_does_not_hold(text: str) -> None:
    from neardup.io.checks import control_share

    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t\f\v")
    assert control_share(text) == controls / max(len(text), 1)
