"""collectionFilterMatch: its parsing and which collections it accepts (no database)."""

from datetime import datetime, timezone as tz

import pytest

from datasets.search.collection_filter import FilterInvalid, parse_match

MAY = datetime(2024, 5, 10, 12, 0, tzinfo=tz.utc)


def accepts(raw, tags, created=MAY):
    return parse_match(raw).accepts(tags=tags, created_at=created)


def test_and_needs_every_tag():
    raw = {"tags": {"$and": ["a", "b"]}}
    assert accepts(raw, ["a", "b", "c"])
    assert not accepts(raw, ["a"])
    assert not accepts(raw, [])


def test_or_needs_one_tag_and_null_means_untagged():
    assert accepts({"tags": {"$or": ["a", "x"]}}, ["x"])
    assert not accepts({"tags": {"$or": ["a", "x"]}}, ["b"])
    assert not accepts({"tags": {"$or": ["a", "x"]}}, [])
    assert accepts({"tags": {"$or": ["a", None]}}, [])
    assert accepts({"tags": {"$or": ["a", None]}}, ["a"])
    assert not accepts({"tags": {"$or": ["a", None]}}, ["b"])


def test_and_null_is_untagged_only_and_null_beside_names_is_nothing():
    assert accepts({"tags": {"$and": [None]}}, [])
    assert not accepts({"tags": {"$and": [None]}}, ["a"])
    assert not accepts({"tags": {"$and": [None, "a"]}}, ["a"])
    assert not accepts({"tags": {"$and": [None, "a"]}}, [])


def test_and_and_or_both_apply():
    raw = {"tags": {"$and": ["a"], "$or": ["b", "c"]}}
    assert accepts(raw, ["a", "c"])
    assert not accepts(raw, ["a"])
    assert not accepts(raw, ["c"])


def test_create_time_range_is_inclusive_and_naive_times_are_utc(settings):
    settings.TIME_ZONE = "UTC"
    raw = {"createTime": {"$gte": "2024-05-10 12:00", "$lte": "2024-05-31"}}
    assert accepts(raw, [], MAY)
    assert not accepts(raw, [], datetime(2024, 5, 10, 11, 59, tzinfo=tz.utc))
    assert not accepts(raw, [], datetime(2024, 5, 31, 0, 1, tzinfo=tz.utc))  # a date is its midnight
    assert accepts({"createTime": {"$gte": "2024-05-10T13:00:00+01:00"}}, [], MAY)


def test_empty_parts_are_no_condition():
    assert parse_match({}).is_empty
    assert parse_match({"tags": {"$and": []}, "createTime": {}}).is_empty
    assert accepts({"tags": {}}, ["anything"])


@pytest.mark.parametrize(
    "raw, part",
    [
        ([], "object"),
        ({"color": "red"}, "unknown key"),
        ({"tags": ["a"]}, "tags must be"),
        ({"tags": {"$not": ["a"]}}, "tags must be"),
        ({"tags": {"$and": "a"}}, "tags.$and"),
        ({"tags": {"$or": [1]}}, "tags.$or"),
        ({"createTime": {"$gt": "2024-01-01"}}, "createTime must be"),
        ({"createTime": {"$gte": "yesterday"}}, "createTime.$gte"),
        ({"createTime": {"$lte": 20240101}}, "createTime.$lte"),
        ({"createTime": {"$lte": "2024-13-45"}}, "createTime.$lte"),
    ],
)
def test_bad_shapes_name_the_part(raw, part):
    with pytest.raises(FilterInvalid, match=part.replace("$", r"\$")):
        parse_match(raw)
