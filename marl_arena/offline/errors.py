"""OfflineDataError, in a module of its own: Ray Data's workers raise it without importing torch."""


class OfflineDataError(ValueError):
    """Offline data that cannot be read: the message names the file and the column."""
