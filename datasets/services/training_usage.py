"""createTrainingUsage: a bill id that groups the training usage of several pushData calls."""

from datasets import selectors
from datasets.models import TrainingBill


def create_training_bill(*, team_id: str, dataset_id: str, name: str = "") -> TrainingBill:
    dataset = selectors.get_knowledge_base(team_id=team_id, dataset_id=dataset_id)
    return TrainingBill.objects.create(team_id=team_id, dataset=dataset, name=name)
