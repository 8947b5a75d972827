"""The one exception type users see; the CLI prints it on one line and exits with status 2."""


class MusicTFError(Exception):
    """A user-facing error: bad input, bad configuration or an incompatible run."""


class ConfigError(MusicTFError):
    """A preset, override or config file that cannot be used."""


class FieldError(ConfigError):
    """A value one config field or argument cannot take; `field` names it, so that a caller with its
    own names for fields (the CLI's flags) can say which of them was wrong; `value`, where given, is
    the value refused (a file's path)."""

    def __init__(self, field: str, reason: str, value: object = None):
        self.field, self.reason, self.value = field, reason, value
        super().__init__(self.said_as(field))

    def said_as(self, name: str) -> str:
        """The message with the field called `name` (a flag)."""
        return f"{name}{'' if self.value is None else f' {self.value}'}: {self.reason}"
