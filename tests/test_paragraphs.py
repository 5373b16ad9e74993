"""Paragraph splitting: lines, blank lines, hard-wrapped wire copy, lists of paragraphs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from neardup import Document
from neardup.text.paragraphs import split_paragraphs

WRAPPED = """\
HARBOUR TALKS RESUME
    Negotiators for the dockworkers and the port authority met
again on Monday after a weekend of silence, union officials said,
and both sides described the first session as constructive even
though no new proposal was put on the table.
    The strike, now in its fifth day, has left more than twenty
container ships waiting outside the harbour and has cost shippers
an estimated four mln dlrs a day, according to the chamber of
commerce.
    Talks will continue on Tuesday.
"""


def texts(doc: Document) -> list[str]:
    return [doc.paragraph_text(i) for i in range(len(doc.paragraphs))]


def test_one_paragraph_per_line_and_blank_lines():
    """Each non-blank line is a paragraph; blank lines separate, never count."""
    doc = Document.from_text("d", "Headline\n\nFirst paragraph here.\r\nSecond one.\n\n\n")
    assert texts(doc) == ["Headline", "First paragraph here.", "Second one."]


def test_hard_wrapped_wire_copy_is_rejoined_by_indentation():
    """Wrapped lines join; an indented line or a short line ends a paragraph."""
    paragraphs = texts(Document.from_text("r", WRAPPED))
    assert len(paragraphs) == 4
    assert paragraphs[0] == "HARBOUR TALKS RESUME"
    assert paragraphs[1].startswith("Negotiators") and paragraphs[1].endswith("on the table.")
    assert paragraphs[3] == "Talks will continue on Tuesday."


def test_list_of_paragraphs_keeps_each_item_whole():
    """A document given as a list keeps each item as one paragraph, even with line breaks inside."""
    doc = Document.from_paragraphs("p", ["First line\nstill first", "  Second  ", ""])
    assert texts(doc) == ["First line\nstill first", "Second"]


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab .\n\t ")), max_size=300))
def test_spans_are_ordered_trimmed_and_inside_the_text(text):
    """Spans lie in the text, in order, without overlap, with no whitespace at their edges."""
    spans = split_paragraphs(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        previous_end = end
    covered = "".join(text[s:e] for s, e in spans)
    assert covered.replace(" ", "").replace("\n", "").replace("\t", "") == \
        text.replace(" ", "").replace("\n", "").replace("\t", "")


def test_short_copy_of_line_per_paragraph_text_is_not_taken_for_wrapped_text():
    """A copy cut to its first short lines splits like its original: one paragraph per line."""
    lines = ["Storm closes coastal roads", "The council said the road would reopen on Monday",
             "Residents were told to avoid the area until further notice and to stay indoors, because falling "
             "trees had already damaged several cars.",
             "The forecast calls for more rain this week and next week too",
             "Officials will meet on Tuesday to count the cost of the repairs to the sea wall, the promenade and "
             "the harbour, which the council says could run to millions."]
    assert len(Document.from_text("original", "\n".join(lines)).paragraphs) == 5
    assert len(Document.from_text("copy", "\n".join(lines[:4])).paragraphs) == 4
