"""What an authenticated `OPTIONS` request answers: the envelope, like every other API answer.

DRF's default would describe the view's serializers (its own format, nothing FastGPT has);
the methods a path accepts are in the `Allow` header, which DRF sets on every answer.
"""

from rest_framework.metadata import BaseMetadata

from config.envelope import envelope


class EnvelopeMetadata(BaseMetadata):
    def determine_metadata(self, request, view) -> dict:
        return envelope(data=None)
