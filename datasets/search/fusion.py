"""Reciprocal-rank fusion of ranked candidate lists, as FastGPT's `datasetSearchResultConcat`.

Each list contributes `weight / (60 + rank)` (rank from 1) to a candidate's fused score. The
per-channel scores a candidate carries are merged (the higher value of a type wins) and an
`rrf` score holds the fused value, its `index` the candidate's place in the fused list.
"""

from dataclasses import dataclass, field

RRF_K = 60

EMBEDDING = "embedding"
FULL_TEXT = "fullText"
RERANK = "reRank"
RRF = "rrf"
SCORE_ORDER = (EMBEDDING, FULL_TEXT, RERANK, RRF)


@dataclass
class Score:
    type: str  # embedding | fullText | reRank | rrf
    value: float
    index: int  # 0-based place in the list that gave this score


@dataclass
class Candidate:
    """A chunk (`Data` id) on its way through the pipeline, with the scores it has so far."""

    data_id: str
    scores: dict[str, Score] = field(default_factory=dict)

    def score(self, kind: str) -> float | None:
        found = self.scores.get(kind)
        return None if found is None else found.value

    def score_list(self) -> list[Score]:
        return [self.scores[kind] for kind in SCORE_ORDER if kind in self.scores]


def ranked(kind: str, items: list[tuple[str, float]]) -> list[Candidate]:
    """A channel's list from (data_id, score) pairs, best first; a repeated id keeps its first
    (best) place — a chunk is scored by its best index."""
    out: list[Candidate] = []
    seen: set[str] = set()
    for data_id, value in items:
        if data_id in seen:
            continue
        seen.add(data_id)
        out.append(Candidate(data_id, {kind: Score(kind, float(value), len(out))}))
    return out


def rrf(lists: list[tuple[list[Candidate], float]]) -> list[Candidate]:
    """Fuse weighted ranked lists into one list, best fused score first.

    Ties keep the order of first appearance (the first list's order first)."""
    fused: dict[str, tuple[Candidate, float]] = {}
    for candidates, weight in lists:
        for rank, candidate in enumerate(candidates, start=1):
            gain = weight / (RRF_K + rank)
            held = fused.get(candidate.data_id)
            if held is None:
                scores = {k: Score(s.type, s.value, s.index) for k, s in candidate.scores.items() if k != RRF}
                fused[candidate.data_id] = (Candidate(candidate.data_id, scores), gain)
                continue
            merged, total = held
            for kind, score in candidate.scores.items():
                if kind == RRF:
                    continue
                mine = merged.scores.get(kind)
                if mine is None:
                    merged.scores[kind] = Score(score.type, score.value, score.index)
                elif score.value > mine.value:
                    mine.value, mine.index = score.value, score.index
            fused[candidate.data_id] = (merged, total + gain)
    order = sorted(fused.values(), key=lambda pair: -pair[1])  # stable: ties keep first appearance
    out = []
    for index, (candidate, total) in enumerate(order):
        candidate.scores[RRF] = Score(RRF, total, index)
        out.append(candidate)
    return out


def reindex(kind: str, candidates: list[Candidate]) -> list[Candidate]:
    """Make each candidate's `kind` score index its place in `candidates` (after a merge of
    several queries' lists of one channel, the place is the one in the merged list)."""
    for index, candidate in enumerate(candidates):
        if kind in candidate.scores:
            candidate.scores[kind].index = index
    return candidates
