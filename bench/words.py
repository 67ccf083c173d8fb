"""Tokeniser speed: `rjieba` (Rust binding) against `jieba` (pure Python), jieba's search mode.

    .venv/bin/python bench/words.py [--kb 400] [--repeat 3]

`jieba` is not a dependency of the project: `.venv/bin/pip install jieba` before running this.

The text is mixed Chinese/English prose (about 40 % Han characters), built from fixed
sentences with a seeded random generator, so every run tokenises the same bytes. Each library
segments the whole text `--repeat` times (best time kept) in two ways: the raw `cut_for_search`
call over the whole text, and `providers.words.words`-style use (the text split into Han runs,
each run segmented, other scripts as lowercase letter/digit runs). The dictionary load (first
call) is timed separately.
"""

import argparse
import random
import re
import sys
import time
from pathlib import Path

ZH = [
    "知识库把上传的文档切成小段，每一段都会生成向量并建立全文索引。",
    "用户可以通过接口上传文本、文件和网页链接，系统在后台完成训练。",
    "中文分词使用结巴的搜索引擎模式，长词会再切出短词，提高召回率。",
    "如果训练失败，集合会显示错误信息，管理员可以重新训练失败的数据。",
    "检索测试同时使用语义检索和全文检索，再用倒数排名融合合并结果。",
    "北京和上海的数据中心之间通过专线连接，延迟大约三十毫秒。",
    "请在配置文件中填写嵌入模型的地址和密钥，然后重启服务。",
    "表格会按行拆分，并在每一段前面重复表头，方便模型理解上下文。",
    "这个版本修复了长文本导入时内存占用过高的问题！",
    "你知道为什么向量检索需要归一化吗？因为余弦相似度只看方向；",
]
EN = [
    "The knowledge base splits each document into chunks and embeds every chunk.",
    "Clients upload text, files and web pages through the OpenAPI, and training runs in the background.",
    "PostgreSQL uses pgvector with an HNSW index; SQLite keeps float32 blobs read with NumPy.",
    "Version 4.8.12 added the chat-history API, see issue #2176 for details.",
    "Retries back off exponentially on HTTP 429 and 5xx responses from the provider.",
]


def mixed_text(n_chars: int, *, seed: int = 7) -> str:
    """About `n_chars` characters of mixed Chinese/English paragraphs, the same for a seed."""
    rnd = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < n_chars:
        para = "".join(rnd.choice(ZH) if rnd.random() < 0.7 else rnd.choice(EN) + " " for _ in range(rnd.randint(2, 8)))
        parts.append(para)
        size += len(para) + 2
    return "\n\n".join(parts)[:n_chars]


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", type=int, default=400, help="size of the text in thousands of characters")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    import jieba
    import rjieba

    jieba.setLogLevel(60)
    text = mixed_text(args.kb * 1000)
    han_runs = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
    n = len(text)
    print(f"text: {n:,} chars, {sum(len(r) for r in han_runs.findall(text)):,} Han")

    for name, mod in (("rjieba", rjieba), ("jieba", jieba)):
        t = time.perf_counter()
        list(mod.cut_for_search("预热词典"))
        load = time.perf_counter() - t
        whole = _best(lambda: list(mod.cut_for_search(text)), args.repeat)
        runs = _best(lambda: [w for r in han_runs.findall(text) for w in mod.cut_for_search(r)], args.repeat)
        print(f"{name:7s} dictionary load {load * 1000:7.0f} ms | whole text {n / whole:12,.0f} chars/s"
              f" | per Han run {n / runs:12,.0f} chars/s")

    from providers.words import words

    t = _best(lambda: words(text), args.repeat)
    print(f"providers.words.words(): {n / t:,.0f} chars/s ({len(words(text)):,} tokens)")


if __name__ == "__main__":
    main()
