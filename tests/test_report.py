"""`musictf report` from real smoke runs: every embedded image and audio file loads."""

import base64
import io
import wave
from html.parser import HTMLParser

import pytest

from musictf.cli import main


class _Sources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attributes):
        if tag in ("img", "audio", "source"):
            self.sources.append((tag, dict(attributes).get("src", "")))


@pytest.fixture(scope="module")
def report(tmp_path_factory, cache_dir):
    root = tmp_path_factory.mktemp("report")
    e1, e4 = root / "runs" / "e1", root / "runs" / "e4"
    assert main(["run", "1", "--preset", "smoke", "--run-dir", str(e1)]) == 0
    assert main(["run", "4", "--preset", "smoke", "--set", "steps_per_quarter=1", "--set", "roll_encoding=active",
                 "--run-dir", str(e4)]) == 0
    e5 = root / "runs" / "e5"
    assert main(["run", "5", "--preset", "smoke", "--run-dir", str(e5)]) == 0
    assert main(["tune", "1", "--preset", "smoke", "--max-trials", "2", "--run-dir", str(root / "tune" / "e1-smoke")]) == 0
    from musictf.report import build_report

    return build_report([e1, e4, e5], root / "reports", tune_root=root / "tune")


def test_every_image_and_audio_on_the_page_loads(report):
    parser = _Sources()
    parser.feed(report.read_text())
    kinds = [tag for tag, _ in parser.sources]
    assert kinds.count("audio") == 3 and kinds.count("img") >= 8
    for tag, source in parser.sources:
        assert source.startswith("data:"), "the page must be self-contained"
        payload = base64.b64decode(source.split(",", 1)[1])
        if tag == "img":
            assert payload[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            with wave.open(io.BytesIO(payload)) as handle:
                assert handle.getnframes() >= 400 and handle.getframerate() in (8000, 16000)


def test_tables_and_pdf_figures_are_written(report):
    out = report.parent
    comparison = (out / "tables" / "comparison.md").read_text().splitlines()
    assert len(comparison) == 5 and "e4_polyphonic" in comparison[-2] and "smoke" in comparison[-2]
    assert "e5_wavenet" in comparison[-1]
    tex = (out / "tables" / "comparison.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "e4\\_polyphonic" in tex
    jsb = (out / "tables" / "jsb.md").read_text()
    assert "8.71" in jsb and "5.56" in jsb and "5.19" not in jsb and "musictf e4_polyphonic" in jsb
    for stem in ("e1_note_lstm-smoke-curves", "e4_polyphonic-smoke-curves", "tune-e1-smoke"):
        assert (out / "figures" / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
        assert (out / "figures" / f"{stem}.png").is_file()
    html = report.read_text()
    assert "numpy synth" in html or "FluidSynth" in html
