"""Input shape of createTrainingUsage (a bill id that groups several pushData calls)."""

from rest_framework import serializers

from datasets.serializers.common import IdField


class TrainingUsageIn(serializers.Serializer):
    datasetId = IdField(source="dataset_id")
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
