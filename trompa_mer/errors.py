"""The one exception type a user is meant to read."""


class MERError(Exception):
    """A problem with the user's input or files, reported as one line (file, field, expectation)."""


class MERWarning(UserWarning):
    """Something a user should know that does not stop the command (a skipped file)."""


def warn(message: str) -> None:
    """Report `message` as a warning (the scripts print it as one `warning: ...` line)."""
    import warnings

    warnings.warn(message, MERWarning, stacklevel=2)
