"""RRF fusion, dedupe keys and the size cut: pure functions, no database."""

import pytest

from datasets.search.budget import count_tokens, within_budget
from datasets.search.dedupe import content_key, unique
from datasets.search.fusion import EMBEDDING, FULL_TEXT, RERANK, RRF, Candidate, Score, ranked, reindex, rrf


def ids(candidates):
    return [c.data_id for c in candidates]


def test_ranked_keeps_a_chunk_at_its_best_index():
    # Three index hits, two of them of chunk "a": it is scored by its best (first) hit.
    out = ranked(EMBEDDING, [("a", 0.9), ("b", 0.8), ("a", 0.7)])
    assert ids(out) == ["a", "b"]
    assert out[0].scores[EMBEDDING] == Score(EMBEDDING, 0.9, 0)
    assert out[1].scores[EMBEDDING] == Score(EMBEDDING, 0.8, 1)


def test_rrf_adds_weight_over_60_plus_rank():
    emb = ranked(EMBEDDING, [("a", 0.9), ("b", 0.8)])
    ft = ranked(FULL_TEXT, [("b", 5.0), ("c", 4.0)])
    fused = rrf([(emb, 0.7), (ft, 0.3)])
    by_id = {c.data_id: c for c in fused}
    assert by_id["a"].score(RRF) == pytest.approx(0.7 / 61)
    assert by_id["b"].score(RRF) == pytest.approx(0.7 / 62 + 0.3 / 61)
    assert by_id["c"].score(RRF) == pytest.approx(0.3 / 62)
    assert ids(fused) == ["b", "a", "c"]
    # per-channel scores survive the merge, rrf's index is the fused place
    assert by_id["b"].scores[EMBEDDING].value == 0.8 and by_id["b"].scores[FULL_TEXT].value == 5.0
    assert [c.scores[RRF].index for c in fused] == [0, 1, 2]


def test_the_weight_decides_which_channel_leads():
    emb = ranked(EMBEDDING, [("e", 0.9)])
    ft = ranked(FULL_TEXT, [("f", 3.0)])
    assert ids(rrf([(emb, 0.9), (ft, 0.1)])) == ["e", "f"]
    assert ids(rrf([(emb, 0.1), (ft, 0.9)])) == ["f", "e"]


def test_a_merge_keeps_the_higher_score_of_a_type_and_one_rrf():
    first = [Candidate("a", {EMBEDDING: Score(EMBEDDING, 0.5, 3), RRF: Score(RRF, 1.0, 0)})]
    second = [Candidate("a", {EMBEDDING: Score(EMBEDDING, 0.8, 0), RERANK: Score(RERANK, 0.4, 0)})]
    (merged,) = rrf([(first, 1), (second, 1)])
    assert merged.scores[EMBEDDING] == Score(EMBEDDING, 0.8, 0)
    assert merged.scores[RERANK].value == 0.4
    assert [s.type for s in merged.score_list()] == [EMBEDDING, RERANK, RRF]
    assert merged.score(RRF) == pytest.approx(2 / 61)
    assert first[0].scores[EMBEDDING].value == 0.5  # the inputs are not modified


def test_ties_keep_the_first_lists_order():
    one = ranked(EMBEDDING, [("a", 1), ("b", 1)])
    two = ranked(FULL_TEXT, [("b", 1), ("a", 1)])
    assert ids(rrf([(one, 0.5), (two, 0.5)])) == ["a", "b"]


def test_reindex_sets_the_place_in_the_merged_list():
    out = reindex(EMBEDDING, ranked(EMBEDDING, [("a", 1), ("b", 1)])[::-1])
    assert [c.scores[EMBEDDING].index for c in out] == [0, 1]


def test_content_key_ignores_punctuation_spacing_and_underscores():
    assert content_key("Hello, world!", "  a_b ") == content_key("Helloworld", "ab")
    assert content_key("你好，世界", "") == content_key("你好世界", "")
    assert content_key("Hello", "") != content_key("hello", "")  # case is kept, as FastGPT
    assert content_key("ab", "c") == content_key("a", "bc")  # q and a are joined first


def test_unique_keeps_the_first():
    assert list(unique(["x1", "y1", "x2"], key=lambda s: s[0])) == ["x1", "y1"]


def test_the_budget_stops_at_the_first_item_that_does_not_fit():
    texts = ["a" * 40, "b" * 40, "c" * 400, "d" * 4]  # 10, 10, 100, 1 tokens
    assert [count_tokens(t) for t in texts] == [10, 10, 100, 1]
    assert within_budget(texts, limit=25, top_k=None, text_of=str) == texts[:2]
    assert within_budget(texts, limit=20, top_k=None, text_of=str) == texts[:2]
    assert within_budget(texts, limit=500, top_k=None, text_of=str) == texts


def test_the_best_result_is_kept_even_over_the_budget():
    assert within_budget(["z" * 400, "y"], limit=5, top_k=None, text_of=str) == ["z" * 400]
    assert within_budget([], limit=5, top_k=None, text_of=str) == []


def test_top_k_caps_the_count_beside_the_budget():
    texts = ["a" * 4] * 10
    assert len(within_budget(texts, limit=5000, top_k=3, text_of=str)) == 3
    assert len(within_budget(texts, limit=4, top_k=8, text_of=str)) == 4


def test_dedupe_and_budget_read_no_further_than_the_budget_keeps():
    keyed = []

    def key(text: str) -> str:
        keyed.append(text)
        return text[0]

    texts = ["a" * 40, "a" * 40, "b" * 40, "c" * 40, "d" * 40]  # 10 tokens each
    assert within_budget(unique(texts, key), limit=20, top_k=None, text_of=str) == ["a" * 40, "b" * 40]
    assert keyed == texts[:3]  # "c" and "d" were never looked at
    keyed.clear()
    assert within_budget(unique(texts, key), limit=5000, top_k=1, text_of=str) == ["a" * 40]
    assert keyed == texts[:1]


def test_the_ascii_fast_path_keys_like_the_regex():
    import hashlib
    import re

    for text in ["Hello, World_1! ~`^|\\ tab\there", "".join(map(chr, range(128))), "plain"]:
        expected = hashlib.sha256(re.sub(r"[\W_]+", "", text).encode()).hexdigest()
        assert content_key(text, "") == expected
