"""Chunked request bodies (`Transfer-Encoding: chunked`, no Content-Length) reach every view,
within the same size limit as any body (config/middleware.py)."""

import io

from django.test import RequestFactory
from django.test.utils import override_settings

from config.middleware import ChunkedBodyMiddleware


def chunked_request(body: bytes, path="/api/core/dataset/create"):
    request = RequestFactory().post(path, data=body, content_type="application/json")
    del request.META["CONTENT_LENGTH"]
    request.META["HTTP_TRANSFER_ENCODING"] = "chunked"
    request._stream = io.BytesIO(body)
    return request


def test_a_chunked_body_gets_its_length_and_is_readable_again():
    seen = {}

    def view(request):
        seen["length"], seen["body"] = request.META["CONTENT_LENGTH"], request.body
        return None

    ChunkedBodyMiddleware(view)(chunked_request(b'{"name": "Docs"}'))
    assert seen == {"length": "16", "body": b'{"name": "Docs"}'}


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10)
def test_a_chunked_body_over_the_limit_is_413():
    response = ChunkedBodyMiddleware(lambda request: None)(chunked_request(b'{"name": "far too long"}'))
    assert response.status_code == 413
    assert b"requestTooLarge" in response.content
