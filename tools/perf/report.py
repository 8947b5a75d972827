"""bench.md: the tables of bench.json, with each goal marked met or missed."""

from __future__ import annotations


def _value(stat: dict, digits: int = 3, suffix: str = "") -> str:
    return f"{stat['median']:.{digits}g}{suffix} (±{100 * stat['spread'] / 2:.0f}%)"


def _verdict(value: float, goal: float, at_most: bool = False) -> str:
    met = value <= goal if at_most else value >= goal
    return "met" if met else "**missed**"


def _against(stat: dict, goal: float, suffix: str = "", at_most: bool = False) -> str:
    """A measured value and whether it met its goal."""
    return f"{_value(stat, 3, suffix)}: {_verdict(stat['median'], goal, at_most)}"


def _variant(entry: dict, name: str) -> str:
    """An LSTM variant's speed-up, or why it could not be built."""
    if f"{name}_speedup" in entry:
        return _value(entry[f"{name}_speedup"], 3, "×")
    return f"failed: {entry[f'{name}_failed']}" if f"{name}_failed" in entry else "–"


def markdown(results: dict) -> str:
    machine = results["machine"]
    versions = ", ".join(
        f"{name} {machine['versions'][name]}"
        for name in ("python", "tensorflow", "keras", "torch")
        if machine["versions"].get(name)
    )
    lines = [
        "# musictf benchmarks",
        "",
        f"Measured {machine['date']} on {machine['cpu']} ({machine['cores']} cores, {machine['memory_gib']} "
        f"GiB, {machine['gpus']} GPUs), threads pinned to {machine['threads']}; {versions}. Size: "
        f"`{results['size']}`.",
        "",
        f"CPU features: {', '.join(machine.get('cpu_flags') or ['none of AVX2, AVX-512, VNNI, BF16'])}. The "
        "ratios depend on them (oneDNN chooses its kernels by them): compare figures only between machines "
        "with the same.",
        "",
        "Each figure is the median over rounds after a warm-up round; ± is half the spread (max − min) / "
        "median. Two things compared are measured in alternating rounds of this one run, and their ratio is "
        "taken round by round; absolute rates are context only.",
        "",
    ]
    if "corpus" in results:
        c = results["corpus"]
        lines += [
            f"## 1. Corpus ({c['files']} files of `{c['source']}`, {c['pieces']} pieces)",
            "",
            "| measure | value | goal |",
            "|---|---|---|",
            f"| cold parse, 1 process | {_value(c['cold_files_per_second_1_process'])} files/s | |",
            f"| cold parse, {c['processes']} processes | {_value(c['cold_files_per_second_n_processes'])} "
            "files/s | |",
            f"| {c['processes']} processes over 1 | {_value(c['parallel_speedup'], 3, '×')} | |",
            f"| cache hit | {_value(c['cache_hit_seconds'], 3, ' s')} | |",
            f"| cache hit over cold parse ({c['processes']} processes) | "
            f"{_value(c['cache_hit_speedup'], 3, '×')} | ≥ {c['goal']['cache_hit_speedup']:.0f}×: "
            f"{_verdict(c['cache_hit_speedup']['median'], c['goal']['cache_hit_speedup'])} |",
            "",
        ]
    if "training" in results:
        t = results["training"]
        goal = t["goal"]
        lines += [
            "## 2–4. Training: pipeline, throughput, precision, PyTorch",
            "",
            "Frames are the time steps a training example holds: tokens (1), roll steps (2–4, encoder plus "
            "decoder for 3–4), audio samples (5). bf16 and XLA columns are speed-ups over float32, same "
            "pipeline. The PyTorch loop computes only the loss; musictf's `fit` also updates its metrics, "
            "so the PyTorch column also gives musictf compiled without metrics.",
            "",
            "| exp | preset, batch | float32 samples/s | float32 frames/s | mixed_bfloat16 | XLA | pipeline "
            f"/ in-memory step (goal ≤ {goal['pipeline_over_in_memory']}) | musictf / PyTorch samples/s "
            f"(goal ≥ {goal['musictf_over_torch']}) | hoisted LSTM (`tools.perf.lstm.LSTM`) over Keras "
            "LSTM | unrolled LSTM over Keras LSTM | samples/s at 2× batch over 1× |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for number, e in t["experiments"].items():
            modes = e["modes"]
            pipeline = e["pipeline_over_in_memory"]
            torch_cell = "–"
            if "musictf_over_torch" in e:
                ratio, bare = e["musictf_over_torch"], e["musictf_loss_only_over_torch"]
                torch_cell = (
                    f"{_against(ratio, goal['musictf_over_torch'], '×')}; without metrics "
                    f"{_value(bare, 3, '×')} (PyTorch: {_value(e['torch_samples_per_second'])} samples/s)"
                )
            lines.append(
                f"| {number} | {e['preset']}, {e['batch']} | "
                f"{_value(modes['float32']['samples_per_second'])} | "
                f"{_value(modes['float32']['frames_per_second'])} | "
                f"{_value(modes['mixed_bfloat16']['speedup_over_float32'], 3, '×')} | "
                f"{_value(modes['xla']['speedup_over_float32'], 3, '×')} | "
                f"{_against(pipeline, goal['pipeline_over_in_memory'], at_most=True)} | {torch_cell} | "
                f"{_variant(e, 'hoisted_lstm')} | {_variant(e, 'unrolled_lstm')} | "
                f"{_value(e['double_batch_throughput'], 3, '×') if 'double_batch_throughput' in e else '–'} |"
            )
        if not t.get("torch"):
            lines += [
                "",
                "PyTorch is not installed, so there is no PyTorch column (`pip install torch==2.13.0`, or "
                "`make bench`, which installs the `[bench]` extra).",
            ]
        lines.append("")
    if "generation" in results:
        g = results["generation"]
        lines += [
            "## 5. Generation: incremental compiled loop against `model.predict` per step (batch 1)",
            "",
            f"| exp | unit | incremental /s (goal ≥ {g['goal']['incremental_per_second']:.0f}) | predict per "
            f"step /s | speed-up (goal ≥ {g['goal']['speedup']:.0f}×) | batched /s (all streams) | batched "
            "over batch 1 |",
            "|---|---|---|---|---|---|---|",
        ]
        for number, e in g["experiments"].items():
            rate, speedup = e["incremental_per_second"], e["speedup"]
            batched = (
                f"{_value(e['batched_steps_per_second'])} ({e['batched_streams']} streams) | "
                f"{_value(e['batched_over_batch_1'])}×"
                if "batched_steps_per_second" in e
                else "– | –"
            )
            lines.append(
                f"| {number} | {e['unit']} | {_against(rate, g['goal']['incremental_per_second'])} | "
                f"{_value(e['predict_per_step_per_second'])} | "
                f"{_against(speedup, g['goal']['speedup'], '×')} | {batched} |"
            )
        lines.append("")
    if "wavenet" in results:
        w = results["wavenet"]
        lines += [
            "## 6. WaveNet: fast cached generation against the naive reference (batch 1)",
            "",
            "| receptive field | layers | fast samples/s | naive samples/s | speed-up | real-time factor |",
            "|---|---|---|---|---|---|",
        ]
        for e in sorted(w["receptive_fields"].values(), key=lambda entry: entry["receptive_field"]):
            speedup, rate = e["speedup"], e["fast_samples_per_second"]
            speedup_cell = _value(speedup, 3, "×")
            if e["receptive_field"] == 2047:
                speedup_cell = _against(speedup, w["goal"]["speedup_at_2047"], "×") + " (goal ≥ 20×)"
            lines.append(
                f"| {e['receptive_field']} | {e['stacks']}×{e['layers_per_stack']}, {e['residual_channels']} "
                f"ch | {_against(rate, w['goal']['fast_samples_per_second'])} (goal ≥ 2000) | "
                f"{_value(e['naive_samples_per_second'])} | {speedup_cell} | {_value(e['real_time_factor'])} "
                f"at {e['sample_rate']} Hz |"
            )
        lines.append("")
    if "memory" in results:
        m = results["memory"]
        lines += [
            f"## 7. Peak memory of `make experiment-N` (preset `{m['preset']}`)",
            "",
            "| exp | peak RSS, musictf process | largest child process¹ | run |",
            "|---|---|---|---|",
        ]
        for number, e in m["experiments"].items():
            if e.get("run"):
                rss = e["peak_rss_mb"]
                lines.append(
                    f"| {number} | {rss['process']:.0f} MB | {rss['largest_child']:.0f} MB | `{e['run']}`, "
                    f"finished {e['finished']} |"
                )
            else:
                lines.append(f"| {number} | not measured | | {e['note']} |")
        lines += [
            "",
            "¹ The largest finished child's peak: the music21 parser processes (spawned, one per core) when "
            "the corpus was not cached yet. A forked child, such as the FluidSynth renderer of experiment "
            "5, also counts the parent's pages it shares, so it is not memory on top of the process's.",
            "",
        ]
    if "scaling" in results:
        lines += scaling_section(results["scaling"])
    order = (
        "corpus",
        "training",
        "generation",
        "wavenet",
        "memory",
        "scaling",
    )  # bench.json's keys come back sorted
    seconds = sorted(
        results["seconds"].items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)
    )
    lines.append("Time per figure: " + ", ".join(f"{name} {value:.0f} s" for name, value in seconds) + ".")
    return "\n".join(lines) + "\n"


def scaling_section(scaling: dict) -> list[str]:
    """Figure 8: ingest and training as the corpus grows, with the two goals of issue 26."""
    rows, goal = scaling["rows"], scaling["goal"]
    sizes = ", ".join(f"{row['files']:,}" for row in rows)
    measured = scaling.get("machine")  # set where the figure was measured apart from the others
    lines = [
        f"## 8. Scaling: {sizes} MIDI files",
        "",
        *(
            [
                f"Measured {measured['date']} on {measured['cpu']} ({measured['cores']} cores, CPU features "
                f"{', '.join(measured.get('cpu_flags') or ['none listed'])}), not on the machine above.",
                "",
            ]
            if measured
            else []
        ),
        "Synthetic corpora of real music (music21's Bach, transposed and stretched in time; "
        "bench/scaling.py), each command in a fresh process. Ingest per file is the ingest report's own "
        "time; peak memory is the process's peak RSS; training is `musictf train 2 --preset smoke --set "
        f"max_files=0` for {scaling['train_steps']} steps per epoch on the whole corpus, its second run (the "
        "arrays cached), steps per second from its second epoch.",
        "",
        "| files | cold ingest | warm ingest | `musictf data` peak | `musictf train 2` peak (first run) | "
        "train steps/s | arrays |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['files']:,} | {row['cold_ingest_ms_per_file']:.2f} ms/file | "
            f"{row['warm_ingest_ms_per_file']:.2f} ms/file | {row['data_peak_rss_mb']} MB | "
            f"{row['train_peak_rss_mb']} MB ({row['train_first_peak_rss_mb']} MB) | "
            f"{row['train_steps_per_second']:.1f} | {row['train_data_path']} |"
        )
    growth, warm = scaling["train_memory_growth"], rows[-1]["warm_ingest_ms_per_file"]
    warm_goal = goal["warm_ingest_ms_per_file"]
    lines += [
        "",
        f"Training memory from the smallest to the largest corpus: {growth:.2f}× (goal ≤ "
        f"{goal['train_memory_growth']}×: {_verdict(growth, goal['train_memory_growth'], at_most=True)}); "
        f"warm ingest at {rows[-1]['files']:,} files: {warm:.2f} ms/file (goal ≤ "
        f"{warm_goal:g}: {_verdict(warm, warm_goal, at_most=True)}).",
        "",
        "![scaling](figures/scaling.png)",
        "",
    ]
    return lines
