"""Parsing a language model's alternative queries (the model call is tested through the API)."""

from datasets.search.extension import MAX_ALTERNATIVES, parse_alternatives


def test_a_json_array_is_read():
    text = 'Sure! ["reset a password", "forgot password", "Reset a password "]'
    assert parse_alternatives(text, original="How do I reset my password?") == ["reset a password", "forgot password"]


def test_lines_are_read_when_there_is_no_array():
    text = "1. change the password\n- lost password\n\n* password reset"
    assert parse_alternatives(text, original="q") == ["change the password", "lost password", "password reset"]


def test_the_question_itself_and_extra_queries_are_dropped():
    text = '["Q", "a", "b", "c", "d"]'
    assert parse_alternatives(text, original="q") == ["a", "b", "c"][:MAX_ALTERNATIVES]


def test_a_bad_array_falls_back_to_lines():
    assert parse_alternatives('[not json\nsecond', original="x") == ["[not json", "second"]
