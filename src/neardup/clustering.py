"""Corpus deduplication: verified pairs → clusters → one representative each.

Stages, each pure over its inputs so the same pipeline runs batch by batch or
on a distributed engine:

1. every document is queried against the index of all documents, which gives
   verified pairs (:class:`Link`) with their kind and containments;
2. exact and near-duplicate links are joined into clusters (union-find);
3. partial links join a partial copy to the cluster of the story it copies when
   its containment reaches ``partial_containment``; a document that holds
   several different stories (a page of two articles) joins only the one it
   shares most with, so it never chains two stories into one cluster;
4. each cluster keeps one representative, by policy, ties broken by id.

Links are processed in sorted order and every choice breaks ties by id, so the
clusters do not depend on input order, batch size or number of workers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal

Policy = Literal["first", "longest", "earliest"]


@dataclass(frozen=True, order=True)
class Link:
    """A verified pair: ``a_in_b`` is the share of ``a``'s shingles found in ``b``;
    ``a_paragraphs`` are the paragraphs of ``a`` that match paragraphs of ``b``."""

    a: str
    b: str
    kind: str
    jaccard: float
    a_in_b: float
    b_in_a: float
    a_paragraphs: frozenset[int] = field(default=frozenset(), compare=False)
    b_paragraphs: frozenset[int] = field(default=frozenset(), compare=False)

    def flipped(self) -> "Link":
        return Link(self.b, self.a, self.kind, self.jaccard, self.b_in_a, self.a_in_b, self.b_paragraphs,
                    self.a_paragraphs)

    def normal(self) -> "Link":
        """The same link with ``a < b``, so each pair has one spelling."""
        return self if self.a <= self.b else self.flipped()


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        parent = self.parent.setdefault(item, item)
        if parent != item:
            parent = self.parent[item] = self.find(parent)
        return parent

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def cluster(ids: Iterable[str], links: Iterable[Link], *, partial_containment: float,
            include_partial: bool = True) -> dict[str, str]:
    """Map every id to a cluster key (the smallest id of its cluster)."""
    groups = _UnionFind()
    for id in ids:
        groups.find(id)
    unique = sorted({link.normal() for link in links})
    for link in unique:
        if link.kind in ("exact", "near-duplicate"):
            groups.union(link.a, link.b)
    if include_partial:
        for a, b in _partial_joins(unique, groups, partial_containment):
            groups.union(a, b)
    return {id: groups.find(id) for id in groups.parent}


def _partial_joins(links: list[Link], groups: _UnionFind, threshold: float) -> list[tuple[str, str]]:
    """Partial links to follow: (inside, container) pairs, at most one story per container.

    The documents inside one container are one story when they match some of
    the same paragraphs of it (truncated and trimmed copies of one article all
    hold its lead) or share a cluster; a container holding several stories on
    different paragraphs (a page of two articles) joins only the story that
    covers the largest share of it.
    """
    inside_of: dict[str, list[Link]] = defaultdict(list)
    for link in links:
        if link.kind != "partial":
            continue
        oriented = link if link.a_in_b >= link.b_in_a else link.flipped()
        if oriented.a_in_b >= threshold:
            inside_of[oriented.b].append(oriented)
    joins = []
    for container, contained in sorted(inside_of.items()):
        stories = _stories(contained, groups)
        if len(set(stories.values())) > 1:
            cover: dict[str, float] = defaultdict(float)
            for link in contained:
                cover[stories[link.a]] = max(cover[stories[link.a]], link.b_in_a)
            best = max(cover, key=lambda story: (cover[story], story))
            contained = [link for link in contained if stories[link.a] == best]
        joins += [(link.a, container) for link in contained]
    return joins


def _stories(contained: list[Link], groups: _UnionFind) -> dict[str, str]:
    """Group the documents inside one container: same cluster, or overlapping paragraphs of it."""
    local = _UnionFind()
    for link in contained:
        local.union(link.a, "cluster:" + groups.find(link.a))
    for i, first in enumerate(contained):
        for second in contained[i + 1:]:
            if first.b_paragraphs & second.b_paragraphs:
                local.union(first.a, second.a)
    return {link.a: local.find(link.a) for link in contained}


def representatives(clusters: dict[str, str], policy: Policy, *, order: dict[str, int],
                    lengths: dict[str, int], dates: dict[str, Any]) -> dict[str, str]:
    """Cluster key → representative id, by policy; ties broken by input order, then id."""
    members: dict[str, list[str]] = defaultdict(list)
    for id, key in clusters.items():
        members[key].append(id)
    rank: Callable[[str], tuple[Any, ...]]
    if policy == "first":
        rank = lambda id: (order[id], id)  # noqa: E731
    elif policy == "longest":
        rank = lambda id: (-lengths[id], id)  # noqa: E731
    else:
        rank = lambda id: (dates.get(id) is None, str(dates.get(id) or ""), id)  # noqa: E731
    return {key: min(ids, key=rank) for key, ids in members.items()}
