"""Which datasets an app may search: its own team's datasets (never a folder, never another
team's), all of one vector model (one query embedding serves them all)."""

from collections.abc import Iterable

from chat.models import App, AppDataset
from datasets.models import Dataset, DatasetType


def linkable_datasets(team_id):
    """The datasets an app of team ``team_id`` may link."""
    return Dataset.objects.filter(team_id=team_id, type=DatasetType.DATASET).order_by("name")


def link_problems(*, team_id, datasets: Iterable[Dataset]) -> list[str]:
    """Why these datasets cannot all be linked to an app of team ``team_id`` (empty: they can)."""
    datasets = list(datasets)
    problems = [
        f"'{d.name}' belongs to another team: an app may only search its own team's datasets."
        for d in datasets if d.team_id != team_id
    ]
    problems += [f"'{d.name}' is a folder, not a dataset." for d in datasets if d.type == DatasetType.FOLDER]
    models = sorted({d.vector_model for d in datasets})
    if len(models) > 1:
        problems.append(
            f"The datasets use different vector models ({', '.join(models)}); one search embeds the "
            "question once, so link datasets of one vector model."
        )
    return problems


def linked_dataset_ids(app: App) -> list[str]:
    """The app's linked datasets, in the order they were linked. Only its own team's count,
    whatever a row says (a row written around the admin's check is ignored, never searched)."""
    return list(
        AppDataset.objects.filter(app=app, dataset__team_id=app.team_id, dataset__type=DatasetType.DATASET)
        .order_by("created_at", "id")
        .values_list("dataset_id", flat=True)
    )
