"""The one exception type of the training package."""


class TrainingError(Exception):
    """A user-facing training error: names the config key, file or run, and the reason."""
