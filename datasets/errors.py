"""The knowledge base's API errors (the one exception handler in config/ renders them)."""

from rest_framework import status

from config.errors import ApiError, NotFound


class CollectionNotFound(NotFound):
    status_text = "unExistCollection"
    default_detail = "Collection not found."


class DataNotFound(NotFound):
    status_text = "unExistData"
    default_detail = "Data not found."


class TrainingBillNotFound(NotFound):
    status_text = "unExistTrainingBill"
    default_detail = "Training bill (billId) not found."


class FileTypeNotSupported(ApiError):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    body_code = 415
    status_text = "unsupportedFileType"
    default_detail = "Unsupported file type."


class FileTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    body_code = 413
    status_text = "fileTooLarge"
    default_detail = "The file is too large."


class NotSupportedHere(ApiError):
    """A FastGPT feature this server does not offer (API and external-file collections)."""

    status_code = status.HTTP_501_NOT_IMPLEMENTED
    body_code = 501
    status_text = "notImplemented"
    default_detail = "Not implemented on this server."
