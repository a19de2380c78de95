"""The exception hierarchy: every error sigalex raises on purpose is a :class:`SigalexError`."""


class SigalexError(Exception):
    """Root of every error sigalex raises on purpose."""


class ParameterError(SigalexError, ValueError):
    """A bad argument or signal: the message names the parameter and its value."""


class ConfigError(SigalexError, ValueError):
    """A bad recipe: the message names the dotted key (``train.lr``) and its value."""


class DataError(SigalexError, OSError):
    """A file or dataset that cannot be read: the message names the file and the problem."""


__all__ = ["ConfigError", "DataError", "ParameterError", "SigalexError"]
