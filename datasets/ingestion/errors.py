"""What reading a source can fail with; the API maps them to 415 / the collection's error state."""


class UnsupportedFileType(Exception):
    """The file's extension is not one we read (the API answers 415 naming the supported ones)."""


class DocumentUnreadable(Exception):
    """The file could not be parsed, or holds no text; str(exc) is shown to the user."""
