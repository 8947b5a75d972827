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
    assert (
        main(
            [
                "run",
                "4",
                "--preset",
                "smoke",
                "--set",
                "steps_per_quarter=1",
                "--set",
                "roll_encoding=active",
                "--set",
                "pad_start=true",
                "--run-dir",
                str(e4),
            ]
        )
        == 0
    )
    e5 = root / "runs" / "e5"
    assert main(["run", "5", "--preset", "smoke", "--run-dir", str(e5)]) == 0
    assert (
        main(
            [
                "tune",
                "1",
                "--preset",
                "smoke",
                "--max-trials",
                "2",
                "--run-dir",
                str(root / "tune" / "e1-smoke"),
            ]
        )
        == 0
    )
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
    benchmark = (out / "tables" / "benchmark.md").read_text().splitlines()
    published = [line for line in benchmark if "Bai, Kolter and Koltun" in line or "ICML 2012" in line]
    # BL2012's Table 1 (7 models x 4 data sets) and the TCN paper's 8 rows; Johnson 2017's 6 x 4
    assert len(published) == 28 + 8 and any("8.45" in line and "LSTM" in line for line in published)
    assert len([line for line in benchmark if "EvoMusArt 2017" in line]) == 24
    ours = [line for line in benchmark if "musictf e4_polyphonic" in line]
    assert len(ours) == 1 and "our split: not comparable" in ours[0], "the run's row says it used our split"
    assert "min" in ours[0].split("|")[6], "with its training time"
    baselines = [line for line in benchmark if "count baseline" in line]
    assert len(baselines) == 3 and all(
        "music21:bach" in line for line in baselines
    )  # independent, Markov, N-gram
    assert not any("musictf e1" in line for line in benchmark), "token runs are not on the frame protocol"
    quality = (out / "tables" / "sample_quality.md").read_text()
    assert quality.count("baseline samples") == 2  # e1's bigram and e4's Markov chain; e5 is audio
    for stem in (
        "e1_note_lstm-smoke-curves",
        "e4_polyphonic-smoke-curves",
        "tune-e1-smoke",
        "sample-statistics",
        "benchmark-curves",
    ):
        assert (out / "figures" / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
        assert (out / "figures" / f"{stem}.png").is_file()
    html = report.read_text()
    assert "numpy synth" in html or "FluidSynth" in html


def _chromium():
    """Selenium on Debian's chromium and chromium-driver (.ci/run installs them); no browser download."""
    import os
    import shutil

    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver_path:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium and chromium-driver (.ci/run installs them)")
        pytest.skip(
            "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        )
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for a browser online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,2000",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


@pytest.mark.slow
def test_the_report_renders_in_a_real_browser(report, tmp_path):
    import time

    import matplotlib.image

    driver = _chromium()
    try:
        driver.get(report.resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('alt') || '', i.complete, "
            "i.naturalWidth]);"
        )
        assert len(images) >= 8
        assert all(complete and width > 0 for _, complete, width in images), images
        audio_state = (
            "return Array.from(document.querySelectorAll('audio')).map(a => [a.readyState, a.duration]);"
        )
        driver.execute_script(
            "document.querySelectorAll('audio').forEach(a => { a.preload = 'metadata'; a.load(); });"
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            audio = driver.execute_script(audio_state)
            if audio and all(ready >= 1 for ready, _ in audio):
                break
            time.sleep(0.2)
        assert len(audio) == 3 and all(ready >= 1 and duration > 0 for ready, duration in audio), audio
        tables = driver.execute_script(
            "return Array.from(document.querySelectorAll('table')).map(t => t.rows.length);"
        )
        assert len(tables) >= 3 and all(rows >= 2 for rows in tables), tables
        screenshot = tmp_path / "report.png"
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
    pixels = matplotlib.image.imread(screenshot)[..., :3]
    assert pixels.std() > 0.05 and len(set(map(tuple, (pixels.reshape(-1, 3)[::97] * 255).astype(int)))) > 20


def test_a_killed_reports_temp_files_are_removed_by_the_next(report, tmp_path):
    """D21: a SIGTERM during `report` left a temp file that no rerun removed."""
    from musictf.report import build_report

    out = report.parent
    stale = [out / "figures" / ".e1-smoke-curves.pdf.9cl9jjnv.pdf", out / "tables" / ".comparison.md.abc.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    runs = sorted(path for path in (out.parent / "runs").iterdir())
    build_report(runs, out, tune_root=out.parent / "tune")
    assert not any(path.exists() for path in stale)
    assert not [path for path in out.rglob(".*") if path.name != ".lock"]


def test_the_scaling_figure_of_bench_json_goes_into_the_report(tmp_path):
    from musictf import files
    from musictf.report import scaling_section

    assert scaling_section(tmp_path / "bench.json", tmp_path / "figures") == ""  # no bench yet
    rows = [
        {
            "files": count,
            "cold_ingest_ms_per_file": 3.5,
            "warm_ingest_ms_per_file": 0.09,
            "data_peak_rss_mb": 80 + count // 100,
            "train_peak_rss_mb": peak,
            "train_steps_per_second": 120.0,
        }
        for count, peak in ((1000, 756), (16000, 844))
    ]
    files.write_json(
        tmp_path / "bench.json",
        {"scaling": {"rows": rows, "train_steps": 200, "train_memory_growth": 844 / 756}},
    )
    section = scaling_section(tmp_path / "bench.json", tmp_path / "figures")
    assert "1.12×" in section and "<img" in section and "16000" in section
    assert (tmp_path / "figures" / "scaling.png").stat().st_size > 1000
