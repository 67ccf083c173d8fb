"""providers.words: the tokens of full-text search and of the lexical embedding."""

import subprocess
import sys
import textwrap

from providers.words import words


def test_chinese_search_mode_yields_long_and_inner_words():
    assert words("中华人民共和国") == ["中华", "华人", "人民", "共和", "共和国", "中华人民共和国"]


def test_english_lowercase_and_punctuation_dropped():
    assert words("Hello, World! It's GPT-4o (v2.5).") == ["hello", "world", "it", "s", "gpt", "4o", "v2", "5"]


def test_mixed_text_keeps_order():
    assert words("我爱北京 Tiananmen，天安门！") == ["我", "爱", "北京", "tiananmen", "天安", "天安门"]


def test_whitespace_punctuation_and_symbols_only_give_nothing():
    assert words("") == []
    assert words("  \n\t。，！？、——……「」『』 ...;:--__ ** @#$% \u3000") == []


def test_digits_split_from_han_and_fullwidth_normalised():
    assert words("２０２４年ＡＢＣ") == ["2024", "年", "abc"]


def test_other_scripts_are_letter_runs():
    assert words("Straße déjà vu, Ωμέγα; привет мир") == ["straße", "déjà", "vu", "ωμέγα", "привет", "мир"]
    assert words("こんにちは 세계") == ["こんにちは", "세계"]


def test_single_han_character_and_underscore():
    assert words("好") == ["好"]
    assert words("snake_case") == ["snake", "case"]


def test_dictionary_loads_without_network():
    """The segmenter's dictionary ships in the wheel: a fresh interpreter whose sockets all
    raise can import it and segment."""
    code = textwrap.dedent(
        """
        import socket
        def refuse(*a, **k):
            raise RuntimeError("network touched")
        socket.socket = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from providers.words import words
        assert words("结巴分词的搜索引擎模式") == ["结巴", "分词", "的", "搜索", "索引", "引擎", "搜索引擎", "模式"], words("结巴分词的搜索引擎模式")
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
