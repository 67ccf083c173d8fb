"""data/pushData: items a client writes into a collection itself (FastGPT's batch add)."""

from config.errors import BadRequest
from datasets import selectors
from datasets.models import CollectionType, TrainingType
from datasets.services.collections import check_qa_possible
from datasets.services.data import InsertResult, NewData, insert_data


def push_data(
    *, team_id: str, usage_key_id: int | None, collection_id: str, items: list[dict],
    training_type: str = TrainingType.CHUNK, bill_id: str | None = None, prompt: str = "",
) -> InsertResult:
    """Insert ≤ 200 q/a items (each with its indexes) pending training; the result says which
    items were skipped and why. `qa`: each item's q (and a) is text for the language model
    to write questions and answers from (``prompt``: the client's own instructions); indexes
    are then not used (FastGPT ignores them too)."""
    collection = selectors.get_collection(team_id=team_id, collection_id=collection_id)
    if collection.type == CollectionType.FOLDER:
        raise BadRequest("collectionId names a folder; push data into a collection (e.g. a virtual one).")
    if training_type == TrainingType.QA:
        check_qa_possible(dataset=collection.dataset)
    if bill_id is not None:
        bill = selectors.get_training_bill(team_id=team_id, bill_id=bill_id)
        if bill.dataset_id != collection.dataset_id:
            raise BadRequest("billId: this training bill was made for another dataset.")
    if training_type == TrainingType.QA:
        from datasets.training_qa import queue_qa

        items_qa = [NewData(q=item["q"], a=item.get("a", ""), chunk_index=item.get("chunk_index", 0)) for item in items]
        return queue_qa(collection=collection, items=items_qa, prompt=prompt, bill_id=bill_id, usage_key_id=usage_key_id)
    new = [
        NewData(q=item["q"], a=item.get("a", ""), chunk_index=item.get("chunk_index", 0), indexes=item.get("indexes") or [])
        for item in items
    ]
    return insert_data(collection=collection, items=new, usage_key_id=usage_key_id, bill_id=bill_id)
