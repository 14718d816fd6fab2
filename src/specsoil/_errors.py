"""The one exception type for problems with the user's input."""


class SpecsoilError(ValueError):
    """Bad user input: a file, column, row, option or model that cannot be used as given.

    The message is meant to be shown to the user as is, on one line. It names the file,
    row or column at fault and what was expected. The CLI turns it into exit status 2.
    """
