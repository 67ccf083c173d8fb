"""Tables as Markdown pipe tables: what the HTML and docx readers turn a table into, so the
chunker can keep it whole or split it by rows with its header repeated."""


def pipe_table(rows: list[list[str]]) -> str:
    """Rows of cell texts as a pipe table; the first row is the header. Empty rows are dropped,
    short rows padded, and `|` inside a cell escaped. "" when no row has text."""
    rows = [[cell.replace("|", "\\|") for cell in row] for row in rows if any(row)]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "| " + " | ".join(["---"] * width) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)
