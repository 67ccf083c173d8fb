"""support/wallet/usage/createTrainingUsage (global key): a bill id grouping pushData calls."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets

from config.envelope import ok
from config.validation import validated
from datasets.serializers.training_usage import TrainingUsageIn
from datasets.services.training_usage import create_training_bill


class TrainingUsageViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="training_usage_create", request=TrainingUsageIn,
        responses=serializers.CharField(help_text="The billId to pass to data/pushData"),
    )
    def create(self, request):
        data = validated(TrainingUsageIn, request.data)
        bill = create_training_bill(team_id=request.auth.team_id, **data)
        return ok(bill.pk)
