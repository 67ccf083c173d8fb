"""The words of a text: the tokens of full-text search and of the built-in lexical embedding.

Chinese (Han) runs are segmented with jieba's search mode (long words plus the shorter words
inside them, e.g. 中华人民共和国 → 中华 华人 人民 共和 共和国 中华人民共和国), so a query word
matches inside a longer indexed word. Every other script is split into runs of letters and
digits, lowercased; punctuation, symbols, underscores and whitespace are dropped. The text is
NFKC-normalised first, so full-width Ａ１ and ASCII A1 give the same word.

Segmenter: `rjieba` (the Rust port of jieba, its dictionary compiled into the wheel — no file
or network access at load). Measured on this machine (2 vCPU, `bench/words.py --kb 400`, mixed
Chinese/English): rjieba 19.6 M chars/s against jieba 0.65 M chars/s in search mode (≈ 30×),
and no dictionary load (jieba spends 0.5–0.8 s building its prefix dictionary on first use, in
every worker process). Same dictionary: on the benchmark text both give identical words for every Han run
(they differ only in how they cut non-Han text, which `words()` splits itself). `words()` itself runs at ≈ 7 M
chars/s, so tokenising 5 MB costs under a second instead of ~8 s with jieba. See docs/benchmarks.md.
"""

import re
import unicodedata

import rjieba

# CJK Unified Ideographs, Extension A, Compatibility Ideographs, Extensions B–F (supplementary).
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
# A Han run, or a run of word characters that are neither "_" nor Han (letters/digits of any
# other script: Latin, Greek, Cyrillic, kana, Hangul…).
_RUNS = re.compile(f"([{_HAN}]+)|([^\\W_{_HAN}]+)")


def words(text: str) -> list[str]:
    """Words of `text` in order: Chinese by jieba's search mode, other scripts as lowercase
    letter/digit runs; punctuation and whitespace dropped."""
    if not text:
        return []
    text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    cut = rjieba.cut_for_search
    for han, other in _RUNS.findall(text):
        if han:
            # A pure Han run yields only Han words (no spaces or punctuation to filter).
            out.extend(cut(han) if len(han) > 1 else (han,))
        else:
            out.append(other.lower())
    return out
