"""The one exception type users see; the CLI prints it on one line and exits with status 2."""


class MusicTFError(Exception):
    """A user-facing error: bad input, bad configuration or an incompatible run."""


class ConfigError(MusicTFError):
    """A preset, override or config file that cannot be used."""
