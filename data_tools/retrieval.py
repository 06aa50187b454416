"""Retrieved pairs (PairUni §1 step 3): match generation samples to understanding neighbours by image cosine.

Order (documented because greedy matching depends on it): all candidate (generation g, understanding u)
pairs with similarity >= threshold are taken in one global order, similarity descending, ties broken by
(g, u) ascending; a candidate is accepted when g has fewer than `top_n` matches and u is still unused.
So the best matches win, each understanding image is used at most once, and a generation sample gets at
most `top_n` partners. The FAISS version computes exactly this without materialising all G x U
similarities: each g keeps a short sorted candidate list and is re-searched (with used images excluded)
only when its list runs out; `greedy_match_bruteforce` is the all-pairs numpy reference.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np

logger = logging.getLogger(__name__)
Progress = Callable[[int], None]
SEARCH_CHUNK = 4096  # generation rows per initial FAISS search


@dataclass(frozen=True)
class Match:
    """A retrieved pair: row `gen_index` of the generation features, row `und_index` of the understanding ones."""

    gen_index: int
    und_index: int
    similarity: float


class _CandidateLists:
    """Per-generation sorted candidate lists from FAISS, refreshed in batches with used images excluded."""

    def __init__(self, gen: np.ndarray, und: np.ndarray, k: int, refresh_batch: int, progress: Progress | None):
        self.gen, self.k, self.refresh_batch = gen, min(k, len(und)), refresh_batch
        self.index = faiss.IndexFlatIP(und.shape[1])
        self.index.add(und)
        self.available = np.ones(len(und), dtype=bool)
        self.sims = np.empty((len(gen), self.k), dtype=np.float32)  # [G, k] similarity descending
        self.ids = np.empty((len(gen), self.k), dtype=np.int64)  # [G, k]
        # The initial search is the bulk of the work: run it in chunks so a progress bar can follow it.
        for start in range(0, len(gen), SEARCH_CHUNK):
            rows = slice(start, start + SEARCH_CHUNK)
            self.sims[rows], self.ids[rows] = self.index.search(gen[rows], self.k)
            if progress is not None:
                progress(len(gen[rows]))
        self.pos = np.zeros(len(gen), dtype=np.int64)

    def refresh(self, gen_rows: list[int]) -> None:
        """New top-k among still-available understanding images for these generation rows."""
        selector = faiss.IDSelectorBitmap(np.packbits(self.available, bitorder="little"))
        k = min(self.k, int(self.available.sum()))
        sims, ids = self.index.search(self.gen[gen_rows], k, params=faiss.SearchParameters(sel=selector))
        self.sims[gen_rows], self.ids[gen_rows] = -np.inf, -1
        self.sims[gen_rows, :k], self.ids[gen_rows, :k] = sims, ids
        self.pos[gen_rows] = 0

    def head(self, g: int) -> tuple[float, int] | None:
        """Current candidate of row g, or None when its list is exhausted."""
        p = self.pos[g]
        if p >= self.k or self.ids[g, p] < 0:
            return None
        return float(self.sims[g, p]), int(self.ids[g, p])


def retrieve_pairs(
    gen: np.ndarray,
    und: np.ndarray,
    threshold: float = 0.6,
    top_n: int = 1,
    k: int = 8,
    refresh_batch: int = 256,
    progress: Progress | None = None,
) -> list[Match]:
    """Greedy one-image-once matching (module docstring) of `gen` [G, D] to `und` [U, D] (L2-normalised rows).

    `k` is the candidate list length per generation sample (a speed knob; the result does not depend on it).
    `progress(n)` is called as the candidate search covers n more generation rows.
    Matches are returned in acceptance order (similarity descending).
    """
    if gen.ndim != 2 or und.ndim != 2 or gen.shape[1] != und.shape[1]:
        raise ValueError(f"features: shapes {gen.shape} and {und.shape} must be [G, D] and [U, D]; fix: same D")
    if top_n < 1:
        raise ValueError(f"top_n={top_n} must be >= 1")
    if len(gen) == 0 or len(und) == 0:
        return []
    gen, und = np.ascontiguousarray(gen, np.float32), np.ascontiguousarray(und, np.float32)
    lists = _CandidateLists(gen, und, max(k, top_n), refresh_batch, progress)
    # Heap entries: (-sim, g, u, version); u = -1 marks "list exhausted, sim is an upper bound, refresh me".
    heap: list[tuple[float, int, int, int]] = []
    version = np.zeros(len(gen), dtype=np.int64)
    for g in range(len(gen)):
        _push_head(heap, lists, g, version, threshold)
    counts = np.zeros(len(gen), dtype=np.int64)
    matches: list[Match] = []
    stale: set[int] = set()
    remaining = len(und)
    while heap and remaining:
        neg_sim, g, u, ver = heapq.heappop(heap)
        if ver != version[g]:
            continue
        if u < 0:
            _refresh(heap, lists, g, stale, version, threshold)
            continue
        if lists.available[u]:
            lists.available[u] = False
            remaining -= 1
            counts[g] += 1
            matches.append(Match(g, u, -neg_sim))
            if counts[g] >= top_n:
                continue
        lists.pos[g] += 1
        if _push_head(heap, lists, g, version, threshold):
            stale.add(g)
    return matches


def _push_head(heap: list, lists: _CandidateLists, g: int, version: np.ndarray, threshold: float) -> bool:
    """Push g's current candidate; returns True when g was pushed as exhausted (needs a refresh)."""
    version[g] += 1
    head = lists.head(g)
    if head is None:
        if lists.pos[g] == 0 or lists.sims[g, lists.k - 1] < threshold:
            return False  # nothing left above the threshold
        # Everything beyond the list is <= its last similarity: a valid upper bound for the heap order.
        heapq.heappush(heap, (-float(lists.sims[g, lists.k - 1]), g, -1, int(version[g])))
        return True
    sim, u = head
    if sim >= threshold:
        heapq.heappush(heap, (-sim, g, u, int(version[g])))
    return False


def _refresh(heap: list, lists: _CandidateLists, g: int, stale: set[int], version: np.ndarray, threshold: float):
    """Re-search g together with up to refresh_batch-1 other exhausted rows (one batched FAISS call)."""
    stale.discard(g)
    rows = [g] + [stale.pop() for _ in range(min(len(stale), lists.refresh_batch - 1))]
    lists.refresh(rows)
    for row in rows:
        if _push_head(heap, lists, row, version, threshold):
            stale.add(row)


def greedy_match_bruteforce(
    gen: np.ndarray, und: np.ndarray, threshold: float = 0.6, top_n: int = 1, chunk: int = 4096
) -> list[Match]:
    """Reference: all G x U similarities (numpy, in row chunks), every candidate >= threshold, one global sort."""
    cand_sim, cand_g, cand_u = [], [], []
    for start in range(0, len(gen), chunk):
        sims = gen[start : start + chunk] @ und.T  # [chunk, U]
        g, u = np.nonzero(sims >= threshold)
        cand_sim.append(sims[g, u])
        cand_g.append(g + start)
        cand_u.append(u)
    if not cand_sim:
        return []
    sim, g, u = np.concatenate(cand_sim), np.concatenate(cand_g), np.concatenate(cand_u)
    order = np.lexsort((u, g, -sim))  # similarity descending, then g, then u
    used = np.zeros(len(und), dtype=bool)
    counts = np.zeros(len(gen), dtype=np.int64)
    matches = []
    for i in order:
        if not used[u[i]] and counts[g[i]] < top_n:
            used[u[i]] = True
            counts[g[i]] += 1
            matches.append(Match(int(g[i]), int(u[i]), float(sim[i])))
    return matches
