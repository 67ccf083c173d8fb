"""The chunking ladder: properties (hypothesis) and FastGPT's behaviours by example."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.ingestion.chunking import (
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    Chunk,
    ChunkSettings,
    InvalidChunkSettings,
    split_text,
)

# --- properties ---------------------------------------------------------------------------------

WORDS = ["知识库", "向量", "检索", "the", "chunk", "data", "模型", "API", "x", "上传文件", "12345", "ok"]
PUNCT = ["。", "，", "！", "？", "；", ". ", ", ", "! ", "? ", "; ", " ", "", "、"]


@st.composite
def sentences(draw) -> str:
    parts = draw(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(PUNCT)), min_size=1, max_size=60))
    return "".join(w + p for w, p in parts)


@st.composite
def blocks(draw) -> str:
    kind = draw(st.sampled_from(["heading", "para", "para", "code", "table", "noise", "long"]))
    if kind == "heading":
        return "#" * draw(st.integers(1, 7)) + " " + draw(sentences())[:40]
    if kind == "para":
        return "\n".join(draw(st.lists(sentences(), min_size=1, max_size=4)))
    if kind == "code":
        body = "\n".join(draw(st.lists(st.sampled_from(["x = 1", "# not a heading", "  return x", "|a|b|", ""]), max_size=80)))
        return f"```python\n{body}\n```"
    if kind == "table":
        rows = draw(st.lists(st.lists(sentences(), min_size=2, max_size=2), min_size=1, max_size=40))
        return "| h1 | h2 |\n| --- | --- |\n" + "\n".join(f"| {a[:60]} | {b[:60]} |" for a, b in rows)
    if kind == "long":  # no separator at all: the fixed-slice last resort
        return draw(st.sampled_from(WORDS)) * draw(st.integers(1, 400))
    return draw(st.text(max_size=300))  # any unicode, control characters included


documents = st.lists(blocks(), max_size=25).map(lambda bs: "\n\n".join(bs)) | st.text(max_size=3000)
chunk_sizes = st.sampled_from([64, 100, 257, 500, 1000])


def non_space(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace())


def is_subsequence(needle: str, haystack: str) -> bool:
    it = iter(haystack)
    return all(ch in it for ch in needle)


def within_bounds(chunk: str, s: ChunkSettings) -> bool:
    if len(chunk) <= s.chunk_size * 1.2:
        return True
    # Unsplittable blocks: a code block kept whole, or one table row.
    return len(chunk) <= s.max_size and ("```" in chunk or "|" in chunk)


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(text=documents, size=chunk_sizes)
def test_no_text_lost_bounded_and_deterministic(text, size):
    s = ChunkSettings(chunk_size=size)
    chunks = split_text(text, s)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.text.strip() for c in chunks)
    joined = "".join(c.text for c in chunks)
    assert is_subsequence(non_space(text.replace("\r", "")), non_space(joined))
    assert all(within_bounds(c.text, s) for c in chunks), [len(c.text) for c in chunks]
    assert split_text(text, s) == chunks
    if not text.strip():
        assert chunks == []


@PROPERTY
@given(text=documents, size=chunk_sizes, splitter=st.sampled_from(["\n\n", "###", "|", "--|==", "。"]))
def test_custom_splitter_keeps_everything_but_the_separators(text, size, splitter):
    s = ChunkSettings(chunk_size=size, custom_splitter=splitter)
    chunks = split_text(text, s)
    stripped = text.replace("\r", "")
    for alternative in sorted(splitter.split("|"), key=len, reverse=True):
        stripped = stripped.replace(alternative, "\n") if alternative else stripped
    assert is_subsequence(non_space(stripped), non_space("".join(c.text for c in chunks)))
    assert all(within_bounds(c.text, s) for c in chunks)


# --- examples -----------------------------------------------------------------------------------


def texts(text: str, **kw) -> list[str]:
    return [c.text for c in split_text(text, ChunkSettings(**kw))]


def test_short_text_is_one_chunk():
    assert split_text("  Hello world.  \n", ChunkSettings()) == [Chunk(text="Hello world.", index=0)]
    assert split_text(" \n\t ", ChunkSettings()) == []


def test_heading_path_is_carried_by_every_chunk_of_a_section():
    body = "".join(f"Step {i} of the installation. " for i in range(40))  # ~1200 chars
    text = f"# Manual\n\nWelcome.\n\n## Install\n\n### Linux\n\n{body}\n\n## Usage\n\nRun it."
    chunks = texts(text, chunk_size=400)
    assert chunks[0] == "# Manual\n\nWelcome."
    linux = [c for c in chunks if "Step 1 " in c or "Step 39 " in c or "Step 20 " in c]
    assert linux[0].startswith("# Manual\n## Install\n\n### Linux\n\nStep 0 ")  # the headings lead, once
    assert all(c.startswith("# Manual\n## Install\n### Linux\n") for c in linux[1:])
    assert chunks[-1] == "# Manual\n## Usage\n\nRun it." or chunks[-1].endswith("## Usage\n\nRun it.")


def test_small_sibling_sections_share_a_chunk():
    text = "# FAQ\n\n## Price?\n\n10 yuan.\n\n## Shipping?\n\nFree.\n\n## Refund?\n\n14 days."
    assert texts(text, chunk_size=1000) == [text]


def test_code_block_kept_whole_and_hash_lines_inside_are_not_headings():
    code = "```python\n" + "\n".join(f"# step {i}\nx{i} = compute({i})" for i in range(40)) + "\n```"
    assert 800 < len(code) < 8000
    text = f"# Doc\n\nIntro text.\n\n{code}\n\nAfter."
    chunks = texts(text, chunk_size=300)
    assert any(c.endswith(code) for c in chunks)  # whole, beyond the chunk size
    assert not any(c.startswith("# step") for c in chunks)


def test_code_block_bigger_than_max_size_is_split_by_lines():
    code = "```\n" + "\n".join(f"line {i} = {i * i}" for i in range(2000)) + "\n```"
    chunks = texts(code, chunk_size=500, max_size=2000)
    assert len(chunks) > 10 and all(len(c) <= 600 for c in chunks)
    assert all(c.split("\n")[-1].startswith(("line", "```")) for c in chunks)  # cut at line ends


def test_big_table_split_by_rows_with_header_repeated():
    rows = [f"| item {i} | {i * 3} yuan | in stock |" for i in range(80)]
    table = "| Item | Price | Status |\n| --- | --- | --- |\n" + "\n".join(rows)
    chunks = texts("# Prices\n\n" + table, chunk_size=300)
    assert len(chunks) > 5
    for c in chunks:
        body = c.split("| Item | Price | Status |", 1)
        assert len(body) == 2, c  # every part has the header…
        assert body[1].startswith("\n| --- | --- | --- |\n| item ")  # …and its separator, then rows
        assert len(c) <= 300
    seen = [r for c in chunks for r in c.split("\n") if r.startswith("| item ")]
    assert seen == rows  # every row once, in order


def test_table_that_fits_is_kept_whole():
    table = "| a | b |\n| - | - |\n| 1 | 2 |\n| 3 | 4 |"
    assert texts(f"Intro.\n\n{table}\n\nOutro.", chunk_size=1000) == [f"Intro.\n\n{table}\n\nOutro."]


def test_chinese_punctuation_levels_and_overlap():
    sentence = "知识库把上传的文档切成小段，每一段都会生成向量。"  # 24 chars
    text = sentence * 50  # one line, no blank lines: split at 。
    chunks = texts(text, chunk_size=200)
    assert all(c.endswith("。") for c in chunks)
    assert all(len(c) <= 240 for c in chunks)
    # Overlap: each chunk after the first starts with the sentence(s) that ended the previous one.
    for prev, cur in zip(chunks, chunks[1:]):
        assert prev.endswith(cur[: len(sentence)])
    assert "".join(chunks).count(sentence) > 50


def test_clause_level_when_no_sentence_end():
    text = "，".join(f"第{i}项内容比较长需要切分" for i in range(100))
    chunks = texts(text, chunk_size=100)
    assert len(chunks) > 5 and all(len(c) <= 120 for c in chunks)
    assert all(c.endswith("，") for c in chunks[:-1])


def test_english_sentences_and_newlines():
    para = " ".join(f"Sentence number {i} is here." for i in range(60))
    chunks = texts(para, chunk_size=200)
    assert all(c.endswith(".") for c in chunks)
    lines = "\n".join(f"line {i} without punctuation" for i in range(100))
    chunks = texts(lines, chunk_size=200)
    assert all(c.split("\n")[-1].startswith("line") and c.endswith("punctuation") for c in chunks)


def test_blank_lines_before_newlines_no_overlap_there():
    paras = "\n\n".join(f"Paragraph {i}: " + "word " * 30 for i in range(20))
    chunks = texts(paras, chunk_size=500)
    assert all(c.startswith("Paragraph") for c in chunks)
    firsts = [c.split(":")[0] for c in chunks]
    assert len(set(firsts)) == len(firsts)  # no paragraph repeated at the paragraph level


def test_small_tail_is_merged():
    text = "A" * 95 + ". " + "B" * 20 + "."  # 118 chars, size 100: the 21-char tail joins
    assert texts(text, chunk_size=100) == [text]


def test_fixed_slices_last_resort():
    chunks = texts("x" * 1000, chunk_size=100)
    assert "".join(chunks) == "x" * 1000 and all(len(c) <= 120 for c in chunks)


def test_custom_splitter_first_and_separators_dropped():
    text = "Q1 answer one.\n###\nQ2 answer two.\n###\nQ3 answer three.\n\nstill three."
    assert texts(text, custom_splitter="###") == ["Q1 answer one.", "Q2 answer two.", "Q3 answer three.\n\nstill three."]
    assert texts("a==b--c", custom_splitter="==|--") == ["a", "b", "c"]
    assert texts("a-----CUSTOM_SPLIT_SIGN-----b") == ["a", "b"]


def test_custom_parts_still_split_when_too_big():
    long = "This is a sentence. " * 30
    chunks = texts(f"short\n@@\n{long}", chunk_size=100, custom_splitter="@@")
    assert chunks[0] == "short" and len(chunks) > 4 and all(len(c) <= 120 for c in chunks)


# --- settings from FastGPT's request fields -----------------------------------------------------


def test_settings_auto_and_defaults():
    assert ChunkSettings.from_request({}) == ChunkSettings()
    assert ChunkSettings.from_request({"chunkSettingMode": "auto", "chunkSize": 50, "chunkSplitter": "#"}) == ChunkSettings()
    assert ChunkSettings().chunk_size == 1000


def test_settings_custom():
    s = ChunkSettings.from_request(
        {"chunkSettingMode": "custom", "chunkSplitMode": "char", "chunkSize": 700, "indexSize": 256, "chunkSplitter": "\n\n"}
    )
    assert (s.chunk_size, s.index_size, s.custom_splitter) == (700, 256, "\n\n")
    size_mode = ChunkSettings.from_request({"chunkSettingMode": "custom", "chunkSplitMode": "size", "chunkSplitter": "#"})
    assert size_mode.custom_splitter == ""
    # Older clients send chunkSize / chunkSplitter without chunkSettingMode.
    assert ChunkSettings.from_request({"chunkSize": "1500", "chunkSplitter": "|"}).chunk_size == 1500


def test_settings_clamped():
    assert ChunkSettings.from_request({"chunkSettingMode": "custom", "chunkSize": 5}).chunk_size == MIN_CHUNK_SIZE
    assert ChunkSettings.from_request({"chunkSettingMode": "custom", "chunkSize": 10**9}).chunk_size == MAX_CHUNK_SIZE


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"chunkSettingMode": "manual"}, "chunkSettingMode"),
        ({"chunkSettingMode": "custom", "chunkSplitMode": "words"}, "chunkSplitMode"),
        ({"chunkSettingMode": "custom", "chunkSize": "abc"}, "chunkSize"),
        ({"chunkSettingMode": "custom", "chunkSize": -5}, "chunkSize"),
        ({"chunkSettingMode": "custom", "chunkSize": True}, "chunkSize"),
        ({"chunkSettingMode": "custom", "indexSize": [1]}, "indexSize"),
        ({"chunkSettingMode": "custom", "chunkSplitter": 5}, "chunkSplitter"),
    ],
)
def test_settings_bad_values_name_the_field(bad, field):
    with pytest.raises(InvalidChunkSettings, match=field):
        ChunkSettings.from_request(bad)
