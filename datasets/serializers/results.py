"""FastGPT's `results` of an insert: `insertLen` plus what was skipped and why.

FastGPT sorts skipped items into `overToken` (too long), `repeat` (duplicates) and `error`
(anything else); we fill those three and also give `skipped`: every item not inserted, with
its position in the request and the reason, in one list.
"""

from rest_framework import serializers


def _bucket(item: dict) -> str:
    kind = str(item.get("kind") or item.get("reason") or "").lower()
    if "duplicate" in kind or "repeat" in kind:
        return "repeat"
    if "long" in kind or "token" in kind or "size" in kind or "large" in kind:
        return "overToken"
    return "error"


def insert_results(result) -> dict:
    """The `results` object of an InsertResult (None: nothing inserted yet — a file or link
    is read in the background)."""
    skipped = list(result.skipped) if result is not None else []
    out = {"insertLen": result.insert_len if result is not None else 0, "overToken": [], "repeat": [], "error": []}
    for item in skipped:
        out[_bucket(item)].append(item)
    out["skipped"] = skipped
    return out


class SkippedItemOut(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in the request (or chunk index)")
    reason = serializers.CharField()


class InsertResultsOut(serializers.Serializer):
    insertLen = serializers.IntegerField(help_text="Items inserted (0 while a file or link is still being read)")
    overToken = SkippedItemOut(many=True)
    repeat = SkippedItemOut(many=True)
    error = SkippedItemOut(many=True)
    skipped = SkippedItemOut(many=True, help_text="Every item not inserted, with the reason")
