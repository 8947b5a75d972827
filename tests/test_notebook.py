"""notebooks/quickstart.ipynb runs top to bottom in a real Jupyter kernel, as a user would run it."""

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


@pytest.mark.slow
def test_the_quickstart_notebook_runs_and_shows_what_it_promises(tmp_path, cache_dir):
    import nbclient
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    os.environ["MUSICTF_NOTEBOOK_RUNS"] = str(tmp_path / "runs")  # the kernel inherits the environment
    try:
        nbclient.NotebookClient(
            notebook,
            timeout=900,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        ).execute()
    finally:
        os.environ.pop("MUSICTF_NOTEBOOK_RUNS", None)
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    ]
    text = "".join(output.get("text", "") for output in outputs)
    assert text.count("test frame NLL") == 2 and "baselines on the same frames" in text
    mime_types = [kind for output in outputs for kind in output.get("data", {})]
    assert mime_types.count("image/png") >= 3  # learning curves, a sample's piano roll, a real excerpt
    assert any("<audio" in output.get("data", {}).get("text/html", "") for output in outputs)
    assert (tmp_path / "runs" / "cpu" / "metrics.json").is_file()
