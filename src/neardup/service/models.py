"""The request and response models of the HTTP API: validation (422 naming the field that is wrong)
and the OpenAPI document come from these declarations."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from neardup.document import Document
from neardup.index.index import OnDuplicate

SURROGATE = re.compile("[\ud800-\udfff]")


def _check_value(value: Any, where: str) -> None:
    """What a client sends must be storable and renderable: finite numbers, encodable text."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: numbers must be finite")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: text holds a lone surrogate (not valid Unicode)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_value(key, where)
            _check_value(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _check_value(item, where)


Threshold = Field(None, gt=0, le=1, allow_inf_nan=False, strict=True,
                  description="article Jaccard for a near-duplicate (default: the index's, 0.8)")


MinContainment = Field(None, ge=0, le=1, allow_inf_nan=False, strict=True,
                       description="containment either way for a partial copy (default: the index's, 0.3)")


Top = Field(None, ge=1, description="at most this many matches per query, best first (default: the server's "
                                    "default_top, 100 unless configured; at most its max_top, 1000)")


class QueryText(BaseModel):
    """One query: a text (paragraphs found from its lines) or a list of paragraphs."""

    model_config = ConfigDict(extra="forbid")
    text: StrictStr | None = Field(None, description="the story; one paragraph per line or per blank-line block")
    paragraphs: list[StrictStr] | None = Field(None, description="the story as a list of paragraphs")
    id: StrictStr | None = Field(None, description="a name for the query, echoed back (default '-')")

    @model_validator(mode="after")
    def _one_text(self) -> QueryText:
        if (self.text is None) == (self.paragraphs is None):
            raise ValueError("give exactly one of 'text' or 'paragraphs'")
        _check_value(self.text if self.text is not None else self.paragraphs, "text")
        _check_value(self.id, "id")
        return self

    def document(self) -> Document:
        id = self.id if self.id is not None else "-"
        if self.text is not None:
            return Document.from_text(id, self.text)
        return Document.from_paragraphs(id, self.paragraphs or [])


class QueryRequest(QueryText):
    """``POST /query``: one story, and optional decision thresholds."""

    top: StrictInt | None = Top
    threshold: float | None = Threshold
    min_containment: float | None = MinContainment
    exclude_self: StrictBool = Field(False, description="leave out the indexed document whose id is the query's id")


class BatchRequest(BaseModel):
    """``POST /query/batch``: many stories, one look-up; thresholds apply to all."""

    model_config = ConfigDict(extra="forbid")
    queries: list[QueryText] = Field(description="the stories; results come back in this order")
    top: StrictInt | None = Top
    threshold: float | None = Threshold
    min_containment: float | None = MinContainment
    exclude_self: StrictBool = Field(False, description="leave out, for each query, the indexed document with its id")


class DocumentIn(BaseModel):
    """A document to index: ``id``, ``text`` (a string or a list of paragraphs); every other
    field is kept as metadata (``source``, ``date``, ``title``, ...)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={
        "example": {"id": "recall-ledger", "text": "Headline\nFirst paragraph.", "source": "Daily Ledger",
                    "date": "2026-03-19"}})
    id: StrictStr | StrictInt = Field(description="unique id (an integer is kept as its decimal string)")
    text: StrictStr | list[StrictStr] = Field(description="the text, or its paragraphs")

    @model_validator(mode="after")
    def _storable(self) -> DocumentIn:
        if str(self.id) == "":
            raise ValueError("id must not be empty")
        _check_value(self.id, "id")
        _check_value(self.text, "text")
        _check_value(self.model_extra or {}, "metadata")
        return self

    def document(self) -> Document:
        metadata = dict(self.model_extra or {})
        if isinstance(self.text, str):
            return Document.from_text(str(self.id), self.text, metadata)
        return Document.from_paragraphs(str(self.id), self.text, metadata)


class AddRequest(BaseModel):
    """``POST /documents``: documents to index, all in one transaction."""

    model_config = ConfigDict(extra="forbid")
    documents: list[DocumentIn]
    on_duplicate: OnDuplicate = Field(
        "skip", description="an id already indexed: skip it (report it), replace the stored document, "
                            "or refuse the whole request with 409")


class Containment(BaseModel):
    query_in_match: float = Field(description="share of the query's words found in the match (weighted)")
    match_in_query: float = Field(description="share of the match's words found in the query (weighted)")


class SharedParagraphOut(BaseModel):
    query_paragraph: int = Field(description="0-based paragraph of the query")
    match_paragraph: int = Field(description="0-based paragraph of the match")
    similarity: float = Field(description="Jaccard of the two paragraphs' shingles")
    query_span: list[int] = Field(description="[start, end) character offsets in the query text")
    match_span: list[int] = Field(description="[start, end) character offsets in the match's text")
    query_text: str
    match_text: str | None = Field(description="null when the index keeps no texts")


class MatchOut(BaseModel):
    id: str
    kind: Literal["exact", "near-duplicate", "figures-differ", "partial"]
    jaccard: float
    jaccard_method: Literal["exact", "estimated"]
    containment: Containment
    metadata: dict[str, Any]
    shared_paragraphs: list[SharedParagraphOut]


class QueryInfo(BaseModel):
    id: str
    paragraphs: list[list[int]] = Field(description="paragraph spans of the query text")
    metadata: dict[str, Any] = Field(description="the indexed story's metadata (copies of a stored document); {}")
    text: str | None = Field(None, description="the text the spans refer to, when the query gave paragraphs "
                                               "(they are joined with blank lines) or was an indexed document")


class QueryOut(BaseModel):
    query: QueryInfo
    matches: list[MatchOut]


class BatchOut(BaseModel):
    results: list[QueryOut]


class AddOut(BaseModel):
    added: int
    replaced: int
    skipped: int
    skipped_reasons: dict[str, int]
    skipped_ids: list[dict[str, str]] = Field(description="[{id, reason}] of the skipped documents")
    documents: int = Field(description="documents in the index after this request")


class DocumentOut(BaseModel):
    id: str
    text: str | None = Field(description="null when the index keeps no texts")
    paragraphs: list[list[int]] = Field(description="paragraph spans of the text")
    metadata: dict[str, Any]


class RemovedOut(BaseModel):
    id: str
    removed: bool
    documents: int


class HealthOut(BaseModel):
    status: Literal["ok"]
    documents: int


class RepeatsOut(BaseModel):
    id: str
    paragraphs: int
    body_paragraphs: int
    repeated_paragraphs: int
    duplicate_fraction: float
    duplicate_char_fraction: float
    groups: list[dict[str, Any]] = Field(description="[{paragraphs, spans, kind, similarity, identical_text}]")
    text: str | None
    paragraph_spans: list[list[int]]


class RepeatsRequest(BaseModel):
    """``POST /repeats``: what repeats inside a text that is not indexed."""

    model_config = ConfigDict(extra="forbid")
    text: StrictStr | None = None
    paragraphs: list[StrictStr] | None = None
    id: StrictStr | None = None

    @model_validator(mode="after")
    def _one_text(self) -> RepeatsRequest:
        QueryText(text=self.text, paragraphs=self.paragraphs, id=self.id)
        return self

    def document(self) -> Document:
        """The text as a document (paragraphs found from its lines, or given)."""
        return QueryText(text=self.text, paragraphs=self.paragraphs, id=self.id).document()


class ErrorOut(BaseModel):
    error: str = Field(description="a code: invalid, not_found, read_only, method_not_allowed, conflict, "
                                   "no_texts, too_large, unsupported_media_type, busy, ...")
    message: str
    detail: list[dict[str, Any]] | None = None


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorOut} for status in statuses}
