"""Quotes into the prompt, as FastGPT's chat node does it.

Each quote is written with the **quote template** (variables of the quote), the quotes are
joined, and the question becomes the **quote prompt** with `{{quote}}` (those quotes) and
`{{question}}` (the user's question). The defaults are FastGPT's standard template and
standard quote prompt (its "user" quote role: the prompt replaces the question's text), in
English; an app overrides either (AppDatasetSearch.quote_template / quote_prompt).

Substitution is one pass: text coming from a quote or from the question is never read again
for `{{…}}` names, so a document or a user cannot inject variables.
"""

from chat.completions.prompting import substitute

DEFAULT_QUOTE_TEMPLATE = """{
  "id": "{{id}}",
  "sourceName": "{{source}}",
  "updateTime": "{{updateTime}}",
  "content": "{{q}}
{{a}}"
}"""

DEFAULT_QUOTE_PROMPT = """Use the content inside <Reference></Reference> as your knowledge for this answer:

<Reference>
{{quote}}
</Reference>

How to answer:
- If you are not sure of the answer, ask for clarification.
- Do not mention that the knowledge comes from <Reference></Reference>.
- Keep the answer consistent with what <Reference></Reference> describes.
- Use Markdown to format the answer.
- Answer in the language of the question.

Question: \"\"\"{{question}}\"\"\""""

QUOTE_SEPARATOR = "\n------\n"


def quote_variables(quote: dict, position: int) -> dict:
    """The variables a quote template may use (`position`: 1-based place in the list)."""
    return {
        "q": quote.get("q", ""),
        "a": quote.get("a", ""),
        "source": quote.get("sourceName", ""),
        "sourceName": quote.get("sourceName", ""),
        "sourceId": quote.get("sourceId", ""),
        "id": quote.get("id", ""),
        "index": position,
        "updateTime": quote.get("updateTime", ""),
        "chunkIndex": quote.get("chunkIndex", ""),
        "datasetId": quote.get("datasetId", ""),
        "collectionId": quote.get("collectionId", ""),
    }


def quote_text(quotes: list[dict], template: str = "") -> str:
    """The quotes, each written with `template` (default: FastGPT's), joined."""
    template = template or DEFAULT_QUOTE_TEMPLATE
    return QUOTE_SEPARATOR.join(
        substitute(template, quote_variables(quote, position)).strip()
        for position, quote in enumerate(quotes, start=1)
    )


def grounded_question(question: str, quotes: list[dict], *, template: str = "", prompt: str = "") -> str:
    """The question's text as the model gets it: the quote prompt around the quotes, or the
    question unchanged when there is nothing to quote (as FastGPT does)."""
    if not quotes:
        return question
    return substitute(prompt or DEFAULT_QUOTE_PROMPT, {"quote": quote_text(quotes, template), "question": question})
