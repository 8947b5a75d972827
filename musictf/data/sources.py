"""What a `--source` names, decided once (`parse_source`), for every stage that asks.

| kind | written as | what it is |
|---|---|---|
| `music21` | `music21:<composer or corpus path>` | part of the corpus inside music21 (`music21:bach`) |
| `placeholder` | `benchmark:<data set>` | a benchmark preset's stand-in: the user names the published file |
| `published` | a `.json`, `.pkl`, `.pickle` or `.mat` file | a polyphonic benchmark file as published |
| `path` | any other file or folder | music files (MIDI, MusicXML, ABC, kern), or experiment 5's WAV files |

Example:
    parse_source("music21:bach") == Source("music21:bach", "music21", "bach")
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from musictf.data.published import PUBLISHED_EXTENSIONS

MUSIC21_PREFIX = "music21:"
PLACEHOLDER_PREFIX = "benchmark:"
KINDS = ("music21", "placeholder", "published", "path")


@dataclasses.dataclass(frozen=True)
class Source:
    """`text` as given; its `kind` (one of KINDS); `name`: the corpus path after `music21:`, the data
    set after `benchmark:`, or the path itself."""

    text: str
    kind: str
    name: str

    @property
    def path(self) -> Path:
        return Path(self.name).expanduser()

    def wav_files(self) -> list[Path]:
        """The `.wav` files of a folder source (experiment 5 reads such a folder as audio); []
        for any other source."""
        return sorted(self.path.rglob("*.wav")) if self.kind == "path" and self.path.is_dir() else []


def parse_source(text: str) -> Source:
    text = str(text)
    if text.startswith(MUSIC21_PREFIX):
        return Source(text, "music21", text[len(MUSIC21_PREFIX) :])
    if text.startswith(PLACEHOLDER_PREFIX):
        return Source(text, "placeholder", text[len(PLACEHOLDER_PREFIX) :])
    if text.lower().endswith(PUBLISHED_EXTENSIONS):
        return Source(text, "published", text)
    return Source(text, "path", text)
