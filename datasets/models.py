"""Knowledge bases. A dataset (or folder of datasets) belongs to one team.

Collections and their data (chunks, vectors, full-text tokens) hang under `Dataset`.
"""

from django.db import models
from django.utils import timezone

from config.ids import new_object_id


class DatasetType(models.TextChoices):
    DATASET = "dataset", "dataset"
    FOLDER = "folder", "folder"


class Dataset(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    team = models.ForeignKey("keys.Team", on_delete=models.CASCADE, related_name="datasets")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    type = models.CharField(max_length=16, choices=DatasetType.choices, default=DatasetType.DATASET)
    name = models.CharField(max_length=100)
    intro = models.TextField(blank=True, default="")
    avatar = models.CharField(max_length=500, blank=True, default="")
    vector_model = models.CharField(max_length=100)
    agent_model = models.CharField(max_length=100)
    vlm_model = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=16, default="active")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["team", "parent", "-updated_at"], name="dataset_team_parent")]

    def __str__(self) -> str:
        return self.name
