"""support/wallet/usage/createTrainingUsage: a bill id grouping several pushData calls."""

from datasets.models import TrainingBill
from tests.datasets.api.helpers import assert_error

PATH = "/api/support/wallet/usage/createTrainingUsage"


def test_create_returns_a_bill_id(api, dataset, team):
    response = api.post(PATH, {"datasetId": dataset.pk, "name": "Nightly import"}, format="json")
    assert response.status_code == 200
    bill = TrainingBill.objects.get(pk=response.json()["data"])
    assert (bill.team, bill.dataset, bill.name) == (team, dataset, "Nightly import")


def test_name_is_optional(api, dataset):
    assert TrainingBill.objects.get(pk=api.post(PATH, {"datasetId": dataset.pk}, format="json").json()["data"]).name == ""


def test_bad_input(api, dataset):
    assert_error(api.post(PATH, {}, format="json"), 400, "datasetId")
    assert_error(api.post(PATH, {"datasetId": dataset.pk, "name": "x" * 101}, format="json"), 400, "name")
    assert_error(api.post(PATH, {"datasetId": "f" * 24}, format="json"), 404)
    assert not TrainingBill.objects.exists()
