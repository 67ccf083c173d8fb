"""A run's node records (FastGPT's `responseData` / `flowResponses`): built for a turn, and
read back for the history endpoints and the admin's transcript.

FastGPT keeps, per AI record, the responses of the workflow nodes that ran (a dataset search
with its quotes, the chat node with model and tokens…); nodes may nest the nodes they ran.
"""

from dataclasses import dataclass

from chat.value_parts import OBJ_OF_ROLE, text_of

CHAT_NODE = "AI Chat"
DATASET_SEARCH_NODE = "Dataset search"
PREVIEW_CHARS = 100
# Node types that called a language model (FastGPT's isLLMNode).
LLM_NODE_TYPES = {"chatNode", "tools", "agent"}
# Keys under which a node nests the responses of the nodes it ran (plugins, tools, loops).
CHILD_KEYS = ("pluginDetail", "toolDetail", "loopDetail", "childrenResponses")


# --- building -------------------------------------------------------------------------------


def history_preview(messages: list[dict]) -> list[dict]:
    """FastGPT's `historyPreview`: each message's role and the start of its text."""
    return [
        {"obj": OBJ_OF_ROLE.get(m["role"], "Human"), "value": text_of(m["content"])[:PREVIEW_CHARS]}
        for m in messages
    ]


def chat_node(
    *,
    node_id: str,
    model_name: str,
    question: str,
    max_tokens: int,
    temperature: float,
    messages: list[dict],
    answer: str,
    running_time: float,
    usage=None,
    error: str = "",
) -> dict:
    """The chat node's record: what it was sent, what it answered, its tokens (``usage``: a
    providers.chat_models.Usage, or None when unknown) and any error."""
    node = {
        "id": node_id,
        "nodeId": "chatNode",
        "moduleName": CHAT_NODE,
        "moduleType": "chatNode",
        "runningTime": round(running_time, 2),
        "model": model_name,
        "query": question,
        "maxToken": max_tokens,
        "temperature": temperature,
        "historyPreview": history_preview(messages),
        "contextTotalLen": len(messages),
        "textOutput": answer,
    }
    if usage is not None:
        node.update(
            tokens=usage.total_tokens, inputTokens=usage.prompt_tokens,
            outputTokens=usage.completion_tokens, totalPoints=usage.total_tokens,
            tokensEstimated=usage.estimated,
        )
    if error:
        node["errorText"] = error
    return node


def dataset_search_node(
    *,
    node_id: str,
    question: str,
    quotes: list[dict],
    search_mode: str,
    similarity: float,
    limit: int,
    using_rerank: bool,
    running_time: float,
    embedding_tokens: int = 0,
    tokens: int = 0,
    details: dict | None = None,
    error: str = "",
) -> dict:
    """The dataset search node's record (FastGPT's datasetSearchNode): the question searched,
    the quotes found (`quoteList`, FastGPT's quote items), the settings it ran with, its tokens
    (`tokens`: all it spent — embedding, rerank, query extension) and any error. ``details``:
    further fields as they are (models, usingSimilarityFilter, notes…)."""
    node = {
        "id": node_id,
        "nodeId": "datasetSearchNode",
        "moduleName": DATASET_SEARCH_NODE,
        "moduleType": "datasetSearchNode",
        "runningTime": round(running_time, 2),
        "query": question,
        "quoteList": quotes,
        "searchMode": search_mode,
        "similarity": similarity,
        "limit": limit,
        "searchUsingReRank": using_rerank,
        "embeddingTokens": embedding_tokens,
        "tokens": tokens,
        "totalPoints": tokens,
        **(details or {}),
    }
    if error:
        node["errorText"] = error
    return node


# --- reading --------------------------------------------------------------------------------


def flat_nodes(nodes) -> list[dict]:
    """Every node response of a run, nested children included, in run order."""
    flat = []
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict):
            continue
        flat.append(node)
        for key in CHILD_KEYS:
            flat.extend(flat_nodes(node.get(key)))
    return flat


@dataclass(frozen=True)
class RunSummary:
    """What FastGPT shows of an AI record's run without sending all of it."""

    quotes: list[dict]
    running_time: float
    llm_node_count: int
    history_preview_length: int | None


def run_summary(response_data) -> RunSummary:
    """Quotes of every dataset search, total running time, LLM calls: from a run's nodes."""
    nodes = flat_nodes(response_data)
    quotes = [
        quote
        for node in nodes
        if node.get("moduleType") == "datasetSearchNode"
        for quote in (node.get("quoteList") or [])
    ]
    running_time = sum(
        node["runningTime"] for node in nodes if isinstance(node.get("runningTime"), (int, float))
    )
    llm_nodes = [node for node in nodes if node.get("moduleType") in LLM_NODE_TYPES]
    preview = llm_nodes[0].get("historyPreview") if llm_nodes else None
    return RunSummary(
        quotes=quotes,
        running_time=round(running_time, 2),
        llm_node_count=len(llm_nodes),
        history_preview_length=len(preview) if isinstance(preview, list) else None,
    )


@dataclass(frozen=True)
class NodeLine:
    """One node of a run as a list shows it (raw values; the caller formats them)."""

    name: str
    model: str
    tokens: object
    running_time: object


def node_lines(response_data) -> list[NodeLine]:
    """Every node of a run, nested ones included, named by what it is."""
    return [
        NodeLine(
            name=node.get("moduleName") or node.get("moduleType") or node.get("nodeId", "node"),
            model=node.get("model", ""),
            tokens=node.get("tokens"),
            running_time=node.get("runningTime"),
        )
        for node in flat_nodes(response_data)
    ]
