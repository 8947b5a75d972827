"""`make gpu-check` (`python -m tools.perf gpu-check`): the accelerator path, checked in one command
of at most 10 minutes on one GPU. It writes reports/gpu.md and reports/gpu.json with the device named:

1. experiments 2 and 4 at `--preset paper`, trained a few short epochs through the engine (run
   directories under runs/gpu-check/), with seconds per step;
2. whether the LSTMs run cuDNN's kernel: the traced training-mode forward pass of each model holds
   `CudnnRNN*` ops (Keras falls back to its generic loop, silently, when an argument rules cuDNN out);
3. experiment 2's paper model in float32, mixed_float16, mixed_bfloat16 and with XLA, step times
   taken in alternating rounds, as `make bench` does;
4. the generation and WaveNet benchmarks of `make bench`.

Without a GPU it refuses in one line (exit status 2): its figures would say nothing about one.
`size="smoke"` with `allow_cpu` runs the same steps tiny on the CPU, which is how the tests check it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from musictf import rundir
from musictf.errors import MusicTFError
from tools.perf import SIZES, Sizes

PRECISION_MODES = {
    "float32": {"precision": "float32", "jit_compile": False},
    "mixed_float16": {"precision": "mixed_float16", "jit_compile": False},
    "mixed_bfloat16": {"precision": "mixed_bfloat16", "jit_compile": False},
    "xla": {"precision": "float32", "jit_compile": True},
}


def gpu_name() -> str | None:
    """The first GPU TensorFlow sees, by its device name, or None."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return (
        f"{details.get('device_name', gpus[0].name)} ({len(gpus)} GPU{'s' if len(gpus) > 1 else ''} visible)"
    )


def require_gpu() -> str:
    name = gpu_name()
    if name is None:
        raise MusicTFError(
            "gpu-check: TensorFlow sees no GPU on this machine; run it where nvidia-smi lists one, after "
            "`make install ACCEL=gpu` (the GPU path stays untested until then: docs/install.md)"
        )
    return name


def cudnn_lstm_ops(model, inputs) -> int:
    """How many cuDNN RNN ops the model's training-mode forward pass on `inputs` traces to (0: the
    LSTMs run Keras's generic loop)."""
    import tensorflow as tf

    traced = tf.function(lambda batch: model(batch, training=True)).get_concrete_function(inputs)
    graph = traced.graph.as_graph_def()
    ops = [node.op for node in graph.node]
    ops += [node.op for function in graph.library.function for node in function.node_def]
    return sum(op.startswith("CudnnRNN") for op in ops)


def _train_check(number: int, size: Sizes, runs_root: Path) -> dict:
    """Experiment `number` at the size's preset, a few short epochs through the engine."""
    import tensorflow as tf

    from musictf import rundir
    from musictf.experiments import get_experiment
    from musictf.experiments.base import prepare_data
    from musictf.train import build_and_compile, train

    experiment = get_experiment(str(number))
    config = experiment.load_config(
        size.check_preset,
        [
            f"epochs={size.check_epochs}",
            f"steps_per_epoch={size.check_steps_per_epoch}",
            f"max_eval_windows={size.check_eval_windows}",
            f"max_files={size.check_max_files}",
        ],
    )
    data = prepare_data(experiment, config, progress=False)
    run_dir = rundir.new_run_dir(experiment.slug, size.check_preset, root=runs_root)
    started = time.perf_counter()
    history = train(experiment, config, run_dir, size.check_preset, data=data, verbose=0)
    seconds = time.perf_counter() - started
    rows, _ = rundir.read_history(run_dir / "history.csv")
    model = build_and_compile(experiment, config, data.representation.features, tf.distribute.get_strategy())
    train_ds, _, _ = experiment.make_datasets(config, data, tf.distribute.get_strategy())
    inputs, _ = next(iter(train_ds))
    epoch_seconds = [row["seconds"] for row in rows if isinstance(row.get("seconds"), float)]
    return {
        "experiment": experiment.slug,
        "preset": size.check_preset,
        "run_dir": str(run_dir),
        "parameters": model.count_params(),
        "epochs": size.check_epochs,
        "steps_per_epoch": size.check_steps_per_epoch,
        "seconds": round(seconds, 1),
        "seconds_per_step_last_epoch": round(epoch_seconds[-1] / size.check_steps_per_epoch, 4)
        if epoch_seconds
        else None,
        "val_loss": history.get("val_loss", [None])[-1],
        "cudnn_lstm_ops": cudnn_lstm_ops(model, inputs),
    }


def _precision_check(size: Sizes) -> dict:
    """Experiment 2's model at the size's preset in each precision mode and with XLA, step times in
    alternating rounds (the ratio to float32 is taken round by round)."""
    import keras
    import tensorflow as tf

    from musictf import config as config_module
    from musictf.distribute import set_precision
    from musictf.experiments import get_experiment
    from musictf.experiments.base import prepare_data
    from musictf.train import build_and_compile
    from tools.perf.timing import interleaved, paired_ratio, summary
    from tools.perf.training import fit_round

    experiment = get_experiment("2")
    base = experiment.load_config(size.check_preset, [f"max_files={size.check_max_files}"])
    data = prepare_data(experiment, base, progress=False)
    strategy = tf.distribute.get_strategy()
    train_ds, _, _ = experiment.make_datasets(base, data, strategy)
    models, failures = {}, {}
    for mode, fields in PRECISION_MODES.items():
        config = config_module.replace(base, fields, origin=f"gpu-check mode {mode}")
        set_precision(config.precision)
        try:
            models[mode] = build_and_compile(experiment, config, data.representation.features, strategy)
        except Exception as error:  # noqa: BLE001 - a mode this device cannot run is a finding
            failures[mode] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    set_precision("float32")
    rounds = {
        mode: (lambda model=model: fit_round(model, train_ds, size.check_mode_steps))
        for mode, model in models.items()
    }
    times = interleaved(rounds, repeats=size.check_mode_repeats, warmup=1)
    keras.backend.clear_session()
    result = {
        mode: {
            "seconds_per_step": summary(times[mode]),
            "speedup_over_float32": paired_ratio(times["float32"], times[mode]),
        }
        for mode in times
    }
    return {"experiment": experiment.slug, "preset": size.check_preset, "modes": result, "failed": failures}


def run_gpu_check(
    out_dir: Path = rundir.REPORTS_ROOT,
    size: str = "full",
    allow_cpu: bool = False,
    runs_root: Path | None = None,
) -> dict:
    """Every check in turn; writes `out_dir`/gpu.json and gpu.md and returns the results."""
    from musictf import files, host, rundir
    from tools.perf.generation import generation_figures, wavenet_figures
    from tools.perf.training import Prepared

    device = gpu_name() if allow_cpu else require_gpu()
    sizes = SIZES[size]
    runs_root = Path(runs_root) if runs_root is not None else rundir.RUNS_ROOT / "gpu-check"
    started = time.perf_counter()
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": device or "none: the CPU (a smoke run of the harness, not GPU figures)",
        "host": host.cpu(),
        "size": size,
        "training": [_train_check(number, sizes, runs_root) for number in (2, 4)],
        "precision": _precision_check(sizes),
    }
    prepared = Prepared(sizes.preset)
    results["generation"] = generation_figures(
        prepared, [2, 4], sizes.generation_steps, sizes.predict_steps, 1
    )
    results["wavenet"] = wavenet_figures(
        prepared, [sizes.check_wavenet_layers], sizes.wavenet_fast_samples, sizes.wavenet_naive_samples, 1
    )
    results["seconds"] = round(time.perf_counter() - started, 1)
    files.write_json(Path(out_dir) / "gpu.json", results)
    files.write_text(Path(out_dir) / "gpu.md", markdown(results))
    return results


def markdown(results: dict) -> str:
    """reports/gpu.md: the device, then one table per check."""
    lines = [
        "# The GPU check (`make gpu-check`)",
        "",
        f"Device: **{results['device']}**; host CPU {results['host']['cpu']}; {results['date']}; "
        f"{results['seconds']:.0f} s in all ({results['size']} size).",
        "",
        f"## Training at the {results['training'][0]['preset']} preset",
        "",
        "| experiment | parameters | seconds per step (last epoch, validation included) | cuDNN LSTM ops | "
        "validation loss |",
        "|---|---|---|---|---|",
    ]
    for entry in results["training"]:
        cudnn = entry["cudnn_lstm_ops"] or "0 (the generic loop, not cuDNN)"
        lines.append(
            f"| {entry['experiment']} ({entry['preset']}) | {entry['parameters']:,} | "
            f"{entry['seconds_per_step_last_epoch']} | {cudnn} | {entry['val_loss']} |"
        )
    lines += [
        "",
        "## Precision and XLA (experiment 2)",
        "",
        "| mode | seconds per step | speed-up over float32 |",
        "|---|---|---|",
    ]
    for mode, entry in results["precision"]["modes"].items():
        step, speedup = entry["seconds_per_step"]["median"], entry["speedup_over_float32"]["median"]
        lines.append(f"| {mode} | {step:.4f} | {speedup:.2f}x |")
    for mode, reason in results["precision"]["failed"].items():
        lines.append(f"| {mode} | failed: {reason} | – |")
    lines += [
        "",
        "## Generation (frames per second, one stream)",
        "",
        "| experiment | incremental | predict per step | speed-up |",
        "|---|---|---|---|",
    ]
    for number, entry in results["generation"]["experiments"].items():
        lines.append(
            f"| {number} | {entry['incremental_per_second']['median']:.0f} | "
            f"{entry['predict_per_step_per_second']['median']:.1f} | {entry['speedup']['median']:.0f}x |"
        )
    lines += [
        "",
        "## WaveNet generation (samples per second)",
        "",
        "| receptive field | fast | naive | speed-up |",
        "|---|---|---|---|",
    ]
    for field, entry in results["wavenet"]["receptive_fields"].items():
        lines.append(
            f"| {field} | {entry['fast_samples_per_second']['median']:.0f} | "
            f"{entry['naive_samples_per_second']['median']:.1f} | {entry['speedup']['median']:.0f}x |"
        )
    return "\n".join(lines) + "\n\n<!-- " + json.dumps({"device": results["device"]}) + " -->\n"
