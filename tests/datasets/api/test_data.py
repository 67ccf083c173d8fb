"""The data (chunk) endpoints: pushData, v2/list and the legacy list, detail, update, delete."""

import pytest

from datasets.models import Collection, Data, DataIndex, TrainingBill
from datasets.services.data import NewData, insert_data
from tests.datasets.api.helpers import assert_error, post, put, read_and_train


def push(api, collection, items, **body):
    return post(api, "data/pushData", {"collectionId": collection.pk, "trainingType": "chunk", "data": items, **body})


def fill(collection, count: int):
    insert_data(collection=collection, items=[NewData(q=f"question {i}", a=f"answer {i}", chunk_index=i) for i in range(count)])
    return list(Data.objects.filter(collection=collection).order_by("chunk_index"))


# --- pushData --------------------------------------------------------------------------------


def test_push_inserts_items_with_their_indexes(api, virtual, global_key):
    response = push(api, virtual, [
        {"q": "What is FastGPT?", "a": "A knowledge-base platform."},
        {"q": "退货政策是什么？", "a": "七天无理由退货。", "indexes": [{"text": "怎么退货"}, {"type": "question", "text": "可以退款吗"}]},
    ])
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 200
    assert body["data"]["insertLen"] == 2 and body["data"]["skipped"] == []
    rows = {d.q: d for d in Data.objects.filter(collection=virtual)}
    assert rows["What is FastGPT?"].a == "A knowledge-base platform."
    assert {r.training_state for r in rows.values()} == {"pending"}
    indexes = sorted(DataIndex.objects.filter(data=rows["退货政策是什么？"]).values_list("type", "text"))
    assert indexes == [("custom", "怎么退货"), ("default", "退货政策是什么？\n七天无理由退货。"), ("question", "可以退款吗")]
    virtual.refresh_from_db()
    assert virtual.status == "training" and virtual.usage_key_id == global_key.row.pk
    listed = post(api, "collection/listV2", {"datasetId": virtual.dataset_id}).json()["data"]["list"][0]
    assert (listed["dataAmount"], listed["trainingAmount"]) == (2, 2)


def test_push_reports_what_was_skipped_and_why(api, virtual):
    data = push(api, virtual, [{"q": "same", "a": "x"}, {"q": "  "}, {"q": "same", "a": "x"}, {"q": "other"}]).json()["data"]
    assert data["insertLen"] == 2
    assert [s["index"] for s in data["skipped"]] == [1, 2]
    assert all(s["reason"] for s in data["skipped"])
    assert [s["index"] for s in data["repeat"]] == [2]
    assert Data.objects.filter(collection=virtual).count() == 2


def test_push_200_items_is_fine_and_201_is_400(api, virtual):
    items = [{"q": f"q{i}"} for i in range(201)]
    assert_error(push(api, virtual, items), 400, "data", "200")
    assert not Data.objects.exists()
    assert push(api, virtual, items[:200]).json()["data"]["insertLen"] == 200


@pytest.mark.parametrize(
    "items, field",
    [
        ([], "data"),
        ("q", "data"),
        ([{"a": "no q"}], "q"),
        ([{"q": None}], "q"),
        ([{"q": "x", "indexes": [{"type": "nope", "text": "t"}]}], "type"),
        ([{"q": "x", "indexes": [{"type": "custom"}]}], "text"),
        ([{"q": "x", "indexes": [{"text": f"t{i}"} for i in range(6)]}], "custom"),
        ([{"q": "x", "indexes": "t"}], "indexes"),
    ],
)
def test_push_bad_items_name_the_field(api, virtual, items, field):
    assert_error(push(api, virtual, items), 400, field)
    assert not Data.objects.exists()


def test_push_bad_body(api, virtual, folder):
    assert_error(post(api, "data/pushData", {"data": [{"q": "x"}]}), 400, "collectionId")
    assert_error(push(api, virtual, [{"q": "x"}], trainingType="image"), 400, "trainingType")
    assert_error(push(api, folder, [{"q": "x"}]), 400, "folder")
    assert_error(push(api, virtual, [{"q": "x"}], trainingType="qa"), 400, "language model")
    assert_error(post(api, "data/pushData", {"collectionId": "f" * 24, "data": [{"q": "x"}]}), 404)
    assert not Data.objects.exists()


def test_push_with_a_bill_id(api, virtual):
    bill_id = api.post("/api/support/wallet/usage/createTrainingUsage", {"datasetId": virtual.dataset_id}, format="json").json()["data"]
    assert push(api, virtual, [{"q": "billed"}], billId=bill_id).json()["data"]["insertLen"] == 1
    assert Data.objects.get(q="billed").bill_id == bill_id


def test_push_with_an_unknown_or_foreign_bill_is_refused(api, virtual, team):
    from datasets.services.datasets import create_dataset

    assert_error(push(api, virtual, [{"q": "x"}], billId="f" * 24), 404, "bill")
    elsewhere = create_dataset(team_id=team.pk, name="Other", type="dataset")
    bill = TrainingBill.objects.create(team=team, dataset=elsewhere)
    assert_error(push(api, virtual, [{"q": "x"}], billId=bill.pk), 400, "billId")
    assert not Data.objects.exists()


def test_pushed_items_become_searchable_after_training(api, virtual):
    push(api, virtual, [{"q": "Penguins cannot fly."}])
    collection = read_and_train(virtual.pk)
    assert collection.status == "ready"
    assert not DataIndex.objects.filter(embedding__isnull=True).exists()


# --- lists -----------------------------------------------------------------------------------


def test_v2_list_in_chunk_order_with_paging(api, virtual):
    rows = fill(virtual, 35)
    first = post(api, "data/v2/list", {"collectionId": virtual.pk, "offset": 0, "pageSize": 30}).json()["data"]
    assert first["total"] == 35 and [i["_id"] for i in first["list"]] == [r.pk for r in rows[:30]]
    item = first["list"][0]
    assert {"_id", "datasetId", "collectionId", "q", "a", "chunkIndex"} <= item.keys()
    assert (item["q"], item["a"], item["chunkIndex"], item["collectionId"]) == ("question 0", "answer 0", 0, virtual.pk)
    second = post(api, "data/v2/list", {"collectionId": virtual.pk, "offset": 30, "pageSize": 30}).json()["data"]
    assert [i["_id"] for i in second["list"]] == [r.pk for r in rows[30:]]


def test_v2_list_search_matches_q_or_a(api, virtual):
    fill(virtual, 12)
    found = post(api, "data/v2/list", {"collectionId": virtual.pk, "searchText": "answer 11"}).json()["data"]
    assert [i["q"] for i in found["list"]] == ["question 11"] and found["total"] == 1


def test_legacy_list(api, virtual):
    fill(virtual, 5)
    page = post(api, "data/list", {"collectionId": virtual.pk, "pageNum": 2, "pageSize": 2}).json()["data"]
    assert (page["pageNum"], page["total"], [i["q"] for i in page["data"]]) == (2, 5, ["question 2", "question 3"])


@pytest.mark.parametrize("body, field", [({"pageSize": 31}, "pageSize"), ({"offset": -3}, "offset"), ({}, "collectionId")])
def test_list_bad_input(api, virtual, body, field):
    body = {"collectionId": virtual.pk, **body} if field != "collectionId" else body
    assert_error(post(api, "data/v2/list", body), 400, field)


def test_list_of_an_unknown_collection_is_404(api):
    assert_error(post(api, "data/v2/list", {"collectionId": "f" * 24}), 404)


# --- detail ----------------------------------------------------------------------------------


def test_detail_has_fastgpts_fields(api, virtual):
    push(api, virtual, [{"q": "Q", "a": "A", "indexes": [{"text": "alt"}]}])
    item = Data.objects.get(q="Q")
    response = api.get(f"/api/core/dataset/data/detail?id={item.pk}")
    assert response.status_code == 200
    detail = response.json()["data"]
    assert (detail["id"], detail["q"], detail["a"], detail["collectionId"], detail["datasetId"]) == (
        item.pk, "Q", "A", virtual.pk, virtual.dataset_id,
    )
    assert {"chunkIndex", "sourceName", "sourceId", "isOwner", "canWrite"} <= detail.keys()
    assert detail["sourceName"] == "Manual"
    assert sorted((i["type"], i["text"]) for i in detail["indexes"]) == [("custom", "alt"), ("default", "Q\nA")]
    assert all(i["dataId"] == i["_id"] for i in detail["indexes"])
    assert "embedding" not in str(detail)


def test_detail_bad_input(api):
    assert_error(api.get("/api/core/dataset/data/detail"), 400, "id")
    assert_error(api.get("/api/core/dataset/data/detail?id=" + "f" * 24), 404)


# --- update ----------------------------------------------------------------------------------


def test_update_q_and_a_re_embeds_the_default_index(api, virtual):
    push(api, virtual, [{"q": "old q", "a": "old a"}])
    read_and_train(virtual.pk)
    item = Data.objects.get()
    response = put(api, "data/update", {"dataId": item.pk, "q": "new q", "a": "new a"})
    assert response.status_code == 200 and response.json()["data"] is None
    item.refresh_from_db()
    assert (item.q, item.a, item.training_state) == ("new q", "new a", "pending")
    assert DataIndex.objects.get(data=item, type="default").text == "new q\nnew a"
    read_and_train(virtual.pk)
    assert not DataIndex.objects.filter(embedding__isnull=True).exists()


def test_update_indexes_keeps_the_ids_it_is_given(api, virtual):
    push(api, virtual, [{"q": "Q", "indexes": [{"text": "keep me"}, {"text": "drop me"}]}])
    item = Data.objects.get()
    keep = DataIndex.objects.get(data=item, text="keep me")
    put(api, "data/update", {"dataId": item.pk, "indexes": [{"dataId": keep.pk, "type": "custom", "text": "keep me"}, {"text": "added"}]})
    after = {i.text: i.pk for i in DataIndex.objects.filter(data=item)}
    assert after["keep me"] == keep.pk and "added" in after and "drop me" not in after


@pytest.mark.parametrize(
    "body, field",
    [
        ({"q": ""}, "q"),
        ({"indexes": [{"type": "bad", "text": "x"}]}, "type"),
        ({"indexes": [{"text": f"t{i}"} for i in range(6)]}, "custom"),
        ({"indexes": "x"}, "indexes"),
    ],
)
def test_update_bad_input_names_the_field(api, virtual, body, field):
    item = fill(virtual, 1)[0]
    assert_error(put(api, "data/update", {"dataId": item.pk, **body}), 400, field)
    item.refresh_from_db()
    assert item.q == "question 0"


def test_update_needs_a_known_data_id(api):
    assert_error(put(api, "data/update", {"q": "x"}), 400, "dataId")
    assert_error(put(api, "data/update", {"dataId": "f" * 24, "q": "x"}), 404)


# --- delete ----------------------------------------------------------------------------------


def test_delete_answers_success_and_removes_the_item(api, virtual):
    item = fill(virtual, 2)[0]
    response = api.delete(f"/api/core/dataset/data/delete?id={item.pk}")
    assert response.status_code == 200 and response.json()["data"] == "success"
    assert not Data.objects.filter(pk=item.pk).exists() and not DataIndex.objects.filter(data_id=item.pk).exists()
    assert Data.objects.filter(collection=virtual).count() == 1
    assert_error(api.delete(f"/api/core/dataset/data/delete?id={item.pk}"), 404)
    assert_error(api.delete("/api/core/dataset/data/delete"), 400, "id")


def test_the_older_mode_field_is_read_as_training_type(api, virtual):
    assert push(api, virtual, [{"q": "x"}], trainingType=None, mode="chunk").status_code == 400  # trainingType: null
    body = {"collectionId": virtual.pk, "mode": "qa", "data": [{"q": "x"}]}
    assert_error(post(api, "data/pushData", body), 400, "language model")
    assert_error(post(api, "data/pushData", {**body, "mode": "nope"}), 400, "mode")
    assert post(api, "data/pushData", {**body, "mode": "chunk"}).json()["data"]["insertLen"] == 1
