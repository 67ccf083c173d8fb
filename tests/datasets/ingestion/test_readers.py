"""Readers: real files of every supported type, in the charsets people actually have."""

import codecs
import io
import zipfile

import pytest

from datasets.ingestion.readers import (
    SUPPORTED_EXTENSIONS,
    DocumentUnreadable,
    ReadDocument,
    UnsupportedFileType,
    read_document,
)
from tests.datasets.ingestion.documents import make_docx, make_pdf

ZH = "知识库把上传的文档切成小段，每一段都会生成向量并建立全文索引。\n第二行：价格￥100，适用于中国大陆。"


# --- txt / md: charsets ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "gb2312"])
def test_txt_in_gbk_family_is_decoded(encoding):
    doc = read_document(filename="说明.txt", content=ZH.encode(encoding))
    assert doc == ReadDocument(text=ZH)


def test_short_gbk_text_is_read_as_chinese_not_big5():
    # Four GBK bytes are also valid Big5/CP949; a Chinese product must prefer GB18030.
    assert read_document(filename="a.txt", content="中文".encode("gbk")).text == "中文"


@pytest.mark.parametrize(
    "bom,encoding", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"), (codecs.BOM_UTF8, "utf-8")]
)
def test_txt_with_byte_order_mark(bom, encoding):
    doc = read_document(filename="notes.TXT", content=bom + ("Hello 世界\r\nline two").encode(encoding))
    assert doc.text == "Hello 世界\nline two"


def test_utf8_and_latin1_text():
    assert read_document(filename="a.md", content="# Title\n\ncafé ☕".encode()).text == "# Title\n\ncafé ☕"
    latin = "Il était une fois, déjà, un garçon très âgé qui mangeait des crêpes à la crème."
    assert read_document(filename="fr.txt", content=latin.encode("cp1252")).text == latin


def test_binary_junk_as_txt_is_unreadable():
    junk = bytes(range(256)) * 40
    with pytest.raises(DocumentUnreadable, match="binary"):
        read_document(filename="junk.txt", content=junk)
    with pytest.raises(DocumentUnreadable, match="binary"):
        read_document(filename="ctrl.txt", content=bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15]) * 50)


def test_bad_utf16_after_bom_is_unreadable():
    with pytest.raises(DocumentUnreadable, match="utf-16-le"):
        read_document(filename="a.txt", content=codecs.BOM_UTF16_LE + b"\x00\xd8A")  # lone surrogate


@pytest.mark.parametrize("content", [b"", b"   \n\t \r\n", "\u3000\n".encode()])
def test_empty_documents_are_unreadable_not_silently_empty(content):
    with pytest.raises(DocumentUnreadable, match="(empty|no text)"):
        read_document(filename="blank.txt", content=content)


# --- type dispatch --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["photo.png", "archive.zip", "README", "slides.pptx", "x.doc", "a.txt.exe"])
def test_unsupported_types_name_the_supported_ones(name):
    with pytest.raises(UnsupportedFileType) as info:
        read_document(filename=name, content=b"whatever")
    for ext in SUPPORTED_EXTENSIONS:
        assert ext in str(info.value)


def test_extension_is_case_insensitive_and_path_stripped():
    assert read_document(filename="dir.v2/Guide.MD", content=b"# Hi\n\nthere").text == "# Hi\n\nthere"


# --- html -----------------------------------------------------------------------------------

PAGE = """<!doctype html><html><head><title>T</title><style>body{color:red}</style>
<script>var secret = "tracking";</script></head><body>
<header><a href="/">Home</a> | <a href="/about">About us</a></header>
<nav><ul><li>Menu one</li><li>Menu two</li></ul></nav>
<div role="navigation">Breadcrumbs here</div>
<main id="content"><h1>Refund policy</h1><p>Refunds are   processed
within <b>14 days</b>.</p><!-- a comment -->
<h2>Exceptions</h2><ul><li>Gift cards</li><li>Sale items</li></ul>
<table><tr><th>Plan</th><th>Days</th></tr><tr><td>Basic</td><td>14</td></tr><tr><td>Pro</td><td>30</td></tr></table>
<pre>def f():
    return 1</pre>
<p style="display: none">hidden text</p><noscript>Enable JS</noscript></main>
<aside>Related articles</aside><footer>© 2026 Acme</footer>
<script>document.write("more script")</script></body></html>"""


def test_html_keeps_readable_text_only():
    text = read_document(filename="page.html", content=PAGE.encode()).text
    assert text == (
        "# Refund policy\n\nRefunds are processed within 14 days .\n\n## Exceptions\n\n- Gift cards\n- Sale items\n\n"
        "| Plan | Days |\n| --- | --- |\n| Basic | 14 |\n| Pro | 30 |\n\n```\ndef f():\n    return 1\n```"
    ).replace("14 days .", "14 days.")
    for gone in ("secret", "tracking", "color:red", "Home", "About us", "Menu one", "Breadcrumbs", "comment",
                 "hidden text", "Enable JS", "Related", "Acme", "more script"):
        assert gone not in text


def test_html_selector_reads_only_matches_and_falls_back_to_page():
    html = b"<html><body><div class='ad'>Buy now</div><article class='post'><p>The post.</p></article></body></html>"
    assert read_document(filename="p.htm", content=html, selector="article.post").text == "The post."
    assert read_document(filename="p.htm", content=html, selector="#nothing").text == "Buy now\n\nThe post."
    with pytest.raises(DocumentUnreadable, match="not a valid CSS selector"):
        read_document(filename="p.htm", content=html, selector="div[[")


def test_html_charset_from_meta_and_detection():
    body = f"<html><head><meta charset='gbk'></head><body><p>{ZH}</p></body></html>".encode("gbk")
    assert "知识库把上传的文档" in read_document(filename="zh.html", content=body).text
    undeclared = f"<html><body><p>{ZH}</p></body></html>".encode("gb18030")
    assert "适用于中国大陆" in read_document(filename="zh.html", content=undeclared).text


def test_html_with_only_chrome_has_no_text():
    with pytest.raises(DocumentUnreadable, match="no text"):
        read_document(filename="x.html", content=b"<html><body><nav>Menu</nav><script>x()</script></body></html>")


# --- pdf ------------------------------------------------------------------------------------


def test_pdf_pages_are_read_in_order():
    pdf = make_pdf(["Chapter one (intro)\nThe first page.", "Chapter two\nThe second page."])
    assert read_document(filename="book.pdf", content=pdf).text == (
        "Chapter one (intro)\nThe first page.\n\nChapter two\nThe second page."
    )


def test_chinese_pdf():
    assert read_document(filename="zh.pdf", content=make_pdf([ZH.replace("￥", "")], chinese=True)).text == ZH.replace("￥", "")


def test_corrupt_and_empty_pdfs_are_unreadable():
    pdf = make_pdf(["Some text"])
    with pytest.raises(DocumentUnreadable, match="not a readable PDF"):
        read_document(filename="broken.pdf", content=pdf[:40])
    with pytest.raises(DocumentUnreadable, match="not a readable PDF"):
        read_document(filename="fake.pdf", content=b"this is not a pdf at all")
    with pytest.raises(DocumentUnreadable, match="no text"):
        read_document(filename="scan.pdf", content=make_pdf([""]))


# --- docx -----------------------------------------------------------------------------------


def test_docx_headings_paragraphs_and_tables():
    docx = make_docx(
        title="安装指南",
        paragraphs=["First, download the package.", "然后运行安装程序。"],
        table=[["Option", "Meaning"], ["-q", "quiet | terse"]],
    )
    assert read_document(filename="guide.docx", content=docx).text == (
        "# 安装指南\n\nFirst, download the package.\n\n然后运行安装程序。\n\n"
        "| Option | Meaning |\n| --- | --- |\n| -q | quiet \\| terse |"
    )


def test_corrupt_docx_is_unreadable():
    with pytest.raises(DocumentUnreadable, match="not a readable Word document"):
        read_document(filename="a.docx", content=b"PK\x03\x04 not really a zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "a zip, but not a Word document")
    with pytest.raises(DocumentUnreadable, match="not a readable Word document"):
        read_document(filename="a.docx", content=buf.getvalue())
    with pytest.raises(DocumentUnreadable, match="no text"):
        read_document(filename="a.docx", content=make_docx(title=" ", paragraphs=["", "  "]))


# --- csv ------------------------------------------------------------------------------------


def test_csv_one_row_per_item_header_kept():
    content = 'question,answer,note\n"What is X?","X is a thing, really",see docs\n退货期限？,14天,\n,,\n'.encode()
    doc = read_document(filename="faq.csv", content=content)
    assert doc.rows == [
        ("question", "answer\nnote"),
        ("What is X?", "X is a thing, really\nsee docs"),
        ("退货期限？", "14天"),
    ]
    assert doc.text == "question\nanswer\nnote\n\nWhat is X?\nX is a thing, really\nsee docs\n\n退货期限？\n14天"


def test_csv_semicolons_multiline_cells_and_gbk():
    content = 'q;a\n"line one\nline two";"answer; with semicolon"\n'.encode()
    assert read_document(filename="x.csv", content=content).rows == [
        ("q", "a"),
        ("line one\nline two", "answer; with semicolon"),
    ]
    gbk = "问题,答案\n运费多少？,满99元包邮\n".encode("gbk")
    assert read_document(filename="zh.csv", content=gbk).rows == [("问题", "答案"), ("运费多少？", "满99元包邮")]


def test_csv_single_column_and_empty():
    assert read_document(filename="one.csv", content=b"only\nsecond\n").rows == [("only", ""), ("second", "")]
    with pytest.raises(DocumentUnreadable, match="no rows"):
        read_document(filename="e.csv", content=b",,\n,,\n")
