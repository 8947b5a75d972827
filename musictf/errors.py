"""The one exception type users see; the CLI prints it on one line and exits with status 2."""


class MusicTFError(Exception):
    """A user-facing error: bad input, bad configuration or an incompatible run."""


class ConfigError(MusicTFError):
    """A preset, override or config file that cannot be used."""


class FieldError(ConfigError):
    """A value one config field cannot take; `field` names it, so that a caller with its own names
    for fields (the CLI's flags) can say which of them was wrong."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason
