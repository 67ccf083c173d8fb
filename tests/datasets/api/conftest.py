"""Fixtures of the knowledge-base endpoint tests: a dataset of the team, one of another team,
collections in them."""

import pytest

from datasets.models import Collection
from datasets.services.collections import create_empty_collection
from datasets.services.datasets import create_dataset


@pytest.fixture
def dataset(team):
    return create_dataset(team_id=team.pk, name="Manuals", type="dataset")


@pytest.fixture
def other_dataset(other_team):
    return create_dataset(team_id=other_team.pk, name="Theirs", type="dataset")


@pytest.fixture
def virtual(dataset) -> Collection:
    return create_empty_collection(team_id=dataset.team_id, dataset_id=dataset.pk, name="Manual", type="virtual")


@pytest.fixture
def folder(dataset) -> Collection:
    return create_empty_collection(team_id=dataset.team_id, dataset_id=dataset.pk, name="Folder", type="folder")


@pytest.fixture
def other_virtual(other_dataset) -> Collection:
    return create_empty_collection(
        team_id=other_dataset.team_id, dataset_id=other_dataset.pk, name="Their manual", type="virtual"
    )


@pytest.fixture
def other_folder(other_dataset) -> Collection:
    return create_empty_collection(
        team_id=other_dataset.team_id, dataset_id=other_dataset.pk, name="Their folder", type="folder"
    )
