"""A key as a test (playing the client) holds it: its row and its plaintext."""


class IssuedKey:
    """A key row and its plaintext, as a test (playing the client) would hold them."""

    def __init__(self, row, plaintext):
        self.row, self.plaintext = row, plaintext

    @property
    def header(self) -> str:
        return f"Bearer {self.plaintext}"
