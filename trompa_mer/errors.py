"""The one exception type a user is meant to read."""


class MERError(Exception):
    """A problem with the user's input or files, reported as one line (file, field, expectation)."""
