"""The built-in offline responder on its own: plain data in, an honest answer out."""

import ast
from pathlib import Path

from providers import offline_responder
from providers.offline_responder import (
    CUT_MARK, NO_MODEL_ANSWER, NOTHING_FOUND_ANSWER, QUOTING_INTRO, answer, pieces,
)
from providers.token_count import estimate_text

QUESTION = [{"role": "user", "content": "What is the refund window? xyzzy"}]


def quote(q: str, source: str, a: str = "") -> dict:
    return {"id": "x", "q": q, "a": a, "sourceName": source, "score": [{"type": "embedding", "value": 0.8, "index": 0}]}


def test_without_datasets_it_says_no_model_is_configured():
    assert answer(QUESTION) == NO_MODEL_ANSWER
    assert answer(QUESTION, None, 100) == NO_MODEL_ANSWER


def test_with_no_quote_it_says_nothing_relevant_was_found():
    text = answer(QUESTION, [], 1000)
    assert text == NOTHING_FOUND_ANSWER
    assert "nothing relevant" in text and "xyzzy" not in text


def test_it_quotes_in_order_under_source_names_and_says_it_is_quoting():
    quotes = [quote("Refunds within 30 days.", "policy.pdf", a="Keep the receipt."), quote("Shipping takes a week.", "faq.md")]
    text = answer(QUESTION, quotes, 1000)
    assert text == (
        f"{QUOTING_INTRO}\n\n[1] policy.pdf\nRefunds within 30 days.\nKeep the receipt.\n\n[2] faq.md\nShipping takes a week."
    )
    assert "not a generated answer" in QUOTING_INTRO and "quoted as they are" in QUOTING_INTRO
    assert "xyzzy" not in text


def test_a_quote_without_source_name_is_named_so():
    assert "[1] (no source name)\nx" in answer(QUESTION, [{"q": "x"}], 1000)


def test_the_answer_is_trimmed_to_the_length_with_a_cut_mark():
    quotes = [quote("word " * 200, "long.md"), quote("never shown", "second.md")]
    text = answer(QUESTION, quotes, 80)
    assert estimate_text(text) <= 80
    assert text.endswith(CUT_MARK) and "[1] long.md" in text and "second.md" not in text


def test_whole_quotes_that_fit_are_kept_and_the_next_is_cut():
    quotes = [quote("short one", "a.md"), quote("二" * 500, "b.md")]
    text = answer(QUESTION, quotes, 100)
    assert "[1] a.md\nshort one" in text and "[2] b.md" in text and text.endswith(CUT_MARK)
    assert estimate_text(text) <= 100


def test_a_tiny_length_still_shows_the_intro_and_the_start_of_the_first_quote():
    text = answer(QUESTION, [quote("Refunds within thirty days of delivery, always.", "policy.pdf")], 5)
    assert text.startswith(QUOTING_INTRO) and "[1] policy.pdf" in text


def test_pieces_join_back_to_the_answer():
    text = answer(QUESTION, [quote("a b  c\nd", "s.md")], 1000)
    assert "".join(pieces(text)) == text


def test_it_imports_neither_chat_nor_datasets():
    tree = ast.parse(Path(offline_responder.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imported <= {"providers"}, imported
