"""Experiment 5: WaveNet on raw audio, with global and local conditioning and fast generation.

Documented model (`paper` preset): stacks of dilated causal convolutions with dilations
1, 2, ..., 512, gated units tanh(W_f * x + V_f h) . sigmoid(W_g * x + V_g h), residual and skip
connections, 1x1 output layers and a 256-way softmax over mu-law (mu = 255) samples at 16 kHz.

Data: audio is rendered from the symbolic corpus (the chorales by default), each piece in one of
the GM programs piano, organ, strings or flute: FluidSynth with a General MIDI SoundFont where it
is installed, else a labelled pure-numpy synth with a stand-in timbre per program (the run's
`representation.json` and every sample say which). Pieces are rendered at a fixed tempo (120 bpm)
so that one piano-roll step (a sixteenth note) is a whole number of samples.

Conditioning, both kinds from the paper:
- global: an embedding of the program, broadcast over time;
- local: the piece's 88-key piano roll, projected and upsampled to the audio rate by repetition.
With both, the model is a neural synthesizer: `musictf generate RUN --roll piece.mid --program organ`.

Generation caches each block's past inputs in a queue (Paine et al. 2016, "Fast WaveNet"), so a
new sample costs O(layers) instead of O(receptive field); the whole loop is one `tf.function`
compiled with XLA: 11.6k samples/s at receptive field 2,047 on 2 CPU cores (`make bench`), 665x
the naive method (rerun the stack over the receptive field per sample), which is kept for the
equality test and the benchmark. Without XLA the loop ran at about 450 samples/s, bound by the
dispatch of its ~240 small ops per sample.

What the defaults change: the `cpu` preset is 8 kHz, 2 stacks x 10 layers (receptive field
2,047 samples), 32 residual channels, and trains on 40 pieces' first 16 quarters for minutes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from musictf import files
from musictf.config import ExperimentConfig, require
from musictf.data import audio
from musictf.data.audio import AudioRepresentation, mu_law_encode
from musictf.data.pianoroll import NUM_KEYS
from musictf.data.pipeline import batched, global_batch_size, table_rows
from musictf.distribute import needs_static_batches
from musictf.errors import ConfigError, MusicTFError
from musictf.experiments.base import Experiment, PreparedData
from musictf.generate import hash_uniform
from musictf.layers import RepeatUpsampling, WaveNetBlock

MU_LAW_CLASSES = 256
SILENCE = MU_LAW_CLASSES // 2  # mu-law code of 0.0


@dataclasses.dataclass(frozen=True)
class WaveNetConfig(ExperimentConfig):
    max_files: int = 40  # Pieces rendered to audio (0: all); rendering and training scale with it.
    sample_rate: int = 8000  # Hz (paper: 16000).
    programs: str = "piano,organ,strings,flute"  # GM timbres; piece k is rendered in program k mod n.
    max_quarters: float = 16.0  # Each piece's opening this long is rendered (8 s at 120 bpm).
    tempo_bpm: float = 120.0  # Fixed so that a sixteenth-note roll step is a whole number of samples.
    residual_channels: int = 32
    skip_channels: int = 64
    layers_per_stack: int = 10  # Dilations 1, 2, ..., 2^(layers_per_stack - 1).
    stacks: int = 2
    local_conditioning: bool = True  # Condition on the piece's piano roll.
    global_conditioning: bool = True  # Condition on the program (timbre) id.
    conditioning_channels: int = 16  # Size of the projected roll and of the program embedding.
    segment_frames: int = 4  # Training crop beyond the receptive field, in roll steps (1 step = hop samples).
    batch_size: int = 4
    epochs: int = 4
    steps_per_epoch: int = 60  # About 1.3 s per step on 2 cores: the whole run stays within minutes.
    max_eval_windows: int = 64
    num_samples: int = 2
    generate_length: int = 16000  # Samples per generated piece (2 s at 8 kHz).

    @property
    def hop(self) -> int:
        """Audio samples per sixteenth-note roll step."""
        return int(round(self.sample_rate * 60 / self.tempo_bpm / 4))

    @property
    def receptive_field(self) -> int:
        return 1 + self.stacks * (2**self.layers_per_stack - 1)

    @property
    def crop_frames(self) -> int:
        """Roll steps in a training or evaluation crop: the receptive field, then `segment_frames`."""
        return math.ceil(self.receptive_field / self.hop) + self.segment_frames

    @property
    def program_names(self) -> list[str]:
        return [name.strip() for name in self.programs.split(",") if name.strip()]

    def validate(self) -> None:
        super().validate()
        require(
            (self.sample_rate >= 1, f"sample_rate must be at least 1, got {self.sample_rate}"),
            (self.tempo_bpm > 0, f"tempo_bpm must be positive, got {self.tempo_bpm}"),
        )
        if abs(self.sample_rate * 60 / self.tempo_bpm / 4 - self.hop) > 1e-9:
            raise ConfigError(f"sample_rate * 15 / tempo_bpm must be a whole number, got {self.sample_rate} Hz at {self.tempo_bpm} bpm")
        unknown = [name for name in self.program_names if name not in audio.PROGRAMS]
        if unknown or not self.program_names:
            raise ConfigError(f"programs must name some of {', '.join(audio.PROGRAMS)}, got {self.programs!r}")
        require(
            *[(getattr(self, name) >= 1, f"{name} must be at least 1, got {getattr(self, name)}")
              for name in ("residual_channels", "skip_channels", "layers_per_stack", "stacks", "segment_frames")],
            (self.max_quarters > 0, f"max_quarters must be positive, got {self.max_quarters}"),
            (self.conditioning_channels >= 1, f"conditioning_channels must be at least 1, got {self.conditioning_channels}"),
        )


# -- model ----------------------------------------------------------------------------------------


def build_model(config: WaveNetConfig, features: int = MU_LAW_CLASSES) -> keras.Model:
    """Inputs: codes (B, T) int, [roll (B, T / hop, 88)], [program (B,)]. Output: (B, T, 256) logits
    where step t predicts sample t + 1."""
    # Layers
    embedding = keras.layers.Embedding(features, config.residual_channels, name="sample_embedding")
    local = config.conditioning_channels if config.local_conditioning else 0
    global_ = config.conditioning_channels if config.global_conditioning else 0
    last = (config.stacks - 1, config.layers_per_stack - 1)
    blocks = [
        WaveNetBlock(config.residual_channels, config.skip_channels, 2**layer, local, global_,
                     residual=(stack, layer) != last, name=f"block_{stack}_{layer}")
        for stack in range(config.stacks)
        for layer in range(config.layers_per_stack)
    ]
    post = keras.layers.Dense(config.skip_channels, activation="relu", name="post")
    logits_layer = keras.layers.Dense(features, dtype="float32", name="logits")
    # Functional graph
    codes = keras.Input((None,), dtype="int32", name="codes")
    inputs, conditioning = {"codes": codes}, []
    if local:
        roll = keras.Input((None, NUM_KEYS), name="roll")
        inputs["roll"] = roll
        projected = keras.layers.Dense(local, name="local_projection")(roll)
        conditioning.append(RepeatUpsampling(config.hop, name="upsample")(projected))
    if global_:
        program = keras.Input((), dtype="int32", name="program")
        inputs["program"] = program
        conditioning.append(keras.layers.Embedding(len(config.program_names), global_, name="program_embedding")(program))
    x, skips = embedding(codes), []
    for block in blocks:
        x, skip = block([x, *conditioning])
        skips.append(skip)
    hidden = post(keras.layers.ReLU()(keras.layers.Add()(skips)))
    return keras.Model(inputs, logits_layer(hidden), name="wavenet")


def compile_arguments(config: WaveNetConfig) -> dict:
    return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}


# -- data -----------------------------------------------------------------------------------------


def make_representation(config: WaveNetConfig) -> AudioRepresentation:
    return AudioRepresentation(config.sample_rate, config.program_names, config.tempo_bpm, config.max_quarters)


def prepare_wav_folder(config: WaveNetConfig) -> PreparedData | None:
    """`--source DIR` holding WAV files: each file, at the run's sample rate, is one piece with no
    piano roll (so local conditioning must be off). Unusable files are skipped with a reason.
    Returns None for any other source, which then goes through the symbolic corpus."""
    from musictf.data.audio import WAVFormatError, read_wav
    from musictf.data.corpus import Corpus, IngestReport, Piece, split_pieces

    folder = Path(config.source).expanduser()
    wavs = sorted(folder.rglob("*.wav")) if folder.is_dir() else []
    if not wavs:
        return None
    if config.local_conditioning:
        raise ConfigError(f"{config.source}: WAV files have no piano roll; add --set local_conditioning=false")
    report, pieces, items, hashes = IngestReport(source=config.source, files_seen=len(wavs)), [], {}, {}
    for path in wavs:
        file_id = path.relative_to(folder).as_posix()
        try:
            waveform, rate = read_wav(path)
        except WAVFormatError as error:
            report.skip(path, f"unreadable: {error}")
            continue
        if rate != config.sample_rate:
            report.skip(path, f"sample rate: {rate} Hz, but this run works at {config.sample_rate} Hz")
            continue
        frames = len(waveform) // config.hop - 1
        if frames < 1:
            report.skip(path, "too short: less than two roll steps of audio")
            continue
        hashes[file_id] = files.sha256_file(path)
        pieces.append(Piece(file_id, file_id, path.stem, ()))
        items[file_id] = (mu_law_encode(waveform[: (frames + 1) * config.hop]).astype(np.int16),
                          np.zeros((frames, NUM_KEYS), np.uint8), 0)
    report.pieces = len(pieces)
    if not pieces:
        raise MusicTFError(f"{config.source}: no usable WAV files ({len(report.skipped)} skipped)")
    splits = split_pieces(pieces, config.split_seed, config.valid_fraction, config.test_fraction)
    representation = make_representation(config)
    representation.renderer = "WAV files"
    arrays = {split: [items[piece.file_id] for piece in chosen] for split, chosen in splits.items()}
    return PreparedData(Corpus(config.source, pieces, report, None, hashes), splits, representation, arrays)


def make_audio_dataset(items, config: WaveNetConfig, batch_size: int, shuffle: bool, stride: int = 1,
                       max_windows: int = 0, repeat: bool = False, drop_remainder: bool = False,
                       start_row: int = 0) -> tf.data.Dataset:
    """Crops of `frames` roll steps that start on a step; codes are shifted by one for targets."""
    hop = config.hop
    frames = config.crop_frames
    codes = np.concatenate([item[0] for item in items]).astype(np.int32)
    rolls = np.concatenate([item[1] for item in items]).astype(np.float32)
    table, code_offset, roll_offset = [], 0, 0
    for item_codes, roll, program in items:
        for start in range(0, len(roll) - frames + 1, stride):
            table.append((code_offset + start * hop, roll_offset + start, program))
        code_offset += len(item_codes)
        roll_offset += len(roll)
    if not table:
        raise MusicTFError(f"no piece is long enough for a training crop of {frames} roll steps")
    table = np.asarray(table, np.int64)
    if max_windows and len(table) > max_windows:
        table = table[np.linspace(0, len(table) - 1, max_windows).astype(int)]
    codes_tensor, rolls_tensor = tf.constant(codes), tf.constant(rolls)
    length = frames * hop

    def crop(row):
        window = codes_tensor[row[0] : row[0] + length + 1]
        inputs = {"codes": window[:-1]}
        if config.local_conditioning:
            inputs["roll"] = rolls_tensor[row[1] : row[1] + frames]
        if config.global_conditioning:
            inputs["program"] = tf.cast(row[2], tf.int32)
        return inputs, window[1:]

    drop_remainder = drop_remainder or repeat
    dataset = table_rows((table,), shuffle=shuffle, seed=config.seed, repeat=repeat,
                         min_rows=batch_size if drop_remainder else 0, start_row=start_row)
    dataset = dataset.map(crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batched(dataset, batch_size, drop_remainder)


def make_datasets(experiment, config: WaveNetConfig, data: PreparedData, strategy, initial_epoch: int = 0):
    batch = global_batch_size(config.batch_size, strategy)
    steps_per_epoch = config.steps_per_epoch or 100
    train = make_audio_dataset(data.arrays["train"], config, batch, shuffle=True, repeat=True,
                               start_row=initial_epoch * steps_per_epoch * batch)
    valid_items = data.arrays["valid"] or data.arrays["train"]
    frames = config.crop_frames
    valid = make_audio_dataset(valid_items, config, batch, shuffle=False, stride=frames, max_windows=config.max_eval_windows,
                               drop_remainder=needs_static_batches(strategy))
    return train, valid, steps_per_epoch


# -- evaluation -----------------------------------------------------------------------------------


def test_metrics(model, config: WaveNetConfig, data: PreparedData, split: str) -> tuple[dict, dict]:
    """NLL in nats and bits per sample and mu-law accuracy, scored only where the receptive field
    is full; plus two baselines on the same samples: the train split's code frequencies
    (unconditional) and "repeat the previous sample"."""
    frames = config.crop_frames
    dataset = make_audio_dataset(data.arrays[split], config, config.batch_size, shuffle=False, stride=frames,
                                 max_windows=config.max_eval_windows)
    forward = tf.function(lambda x: model(x, training=False))
    skip = config.receptive_field - 1
    nll, correct, previous_correct, unigram_nll, count = 0.0, 0, 0, 0.0, 0
    counts = np.bincount(np.concatenate([item[0] for item in data.arrays["train"]]), minlength=MU_LAW_CLASSES) + 1.0
    log_unigram = np.log(counts / counts.sum())
    for inputs, targets in dataset:
        logits = forward(inputs).numpy()[:, skip:].astype(np.float64)
        targets = targets.numpy()[:, skip:]
        previous = inputs["codes"].numpy()[:, skip:]
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        nll -= np.take_along_axis(log_p, targets[..., None], axis=-1).sum()
        correct += int((logits.argmax(axis=-1) == targets).sum())
        previous_correct += int((previous == targets).sum())
        unigram_nll -= log_unigram[targets].sum()
        count += targets.size
    nats = nll / count
    result = {"nll_nats_per_sample": nats, "nll_bits_per_sample": nats / math.log(2), "accuracy": correct / count,
              "samples_scored": count}
    baseline = {"unigram_nll_bits_per_sample": unigram_nll / count / math.log(2),
                "previous_sample_accuracy": previous_correct / count}
    return result, baseline


# -- generation -----------------------------------------------------------------------------------


class WaveNetSampler:
    """Fast cached generation: each block keeps a queue of its last `dilation` inputs, so a new
    sample costs one step through every block, not a pass over the receptive field.

    Args:
        model: a trained WaveNet from `build_model`; its layers are reused, weights shared.
        config: its config (hop, conditioning, receptive field).
        temperature: divides the logits before sampling.
        jit_compile: compile the generation loop with XLA (see the module docstring for the
            speed), after a compile of about 8 s per length bucket.
    """

    # Generated lengths are padded up to a multiple of this, so XLA compiles once per bucket, not per length.
    LENGTH_BUCKET = 4096

    def __init__(self, model, config: WaveNetConfig, temperature: float = 1.0, jit_compile: bool = True):
        self.model, self.config, self.temperature = model, config, temperature
        self.embedding = model.get_layer("sample_embedding")
        self.blocks = [layer for layer in model.layers if isinstance(layer, WaveNetBlock)]
        self.post, self.logits = model.get_layer("post"), model.get_layer("logits")
        names = {layer.name for layer in model.layers}
        self.local_projection = model.get_layer("local_projection") if "local_projection" in names else None
        self.program_embedding = model.get_layer("program_embedding") if "program_embedding" in names else None
        self._fast = tf.function(self._fast_loop, jit_compile=jit_compile, reduce_retracing=True)
        self._forward = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)

    def _conditioning(self, roll, program):
        local = self.local_projection(tf.convert_to_tensor(roll, tf.float32)) if self.local_projection is not None else None
        global_ = self.program_embedding(tf.convert_to_tensor(program, tf.int32)) if self.program_embedding is not None else None
        return local, global_

    def _sample(self, logits, seed, t):
        """A categorical draw by the Gumbel-max trick (XLA has no kernel for stateless_categorical), from
        hash_uniform, so that the XLA loop and the naive reference draw the same numbers."""
        uniform = hash_uniform(tf.shape(logits), seed, t)
        return tf.cast(tf.argmax(logits / self.temperature - tf.math.log(-tf.math.log(uniform)), axis=-1), tf.int32)

    def _fast_loop(self, padded_primer, primer_length, total, roll, program, seed, queues):
        """`padded_primer` (B, bucket): the primer then zeros; only shapes, never `total`, set what XLA compiles."""
        batch = tf.shape(padded_primer)[0]
        for queue in queues:
            queue.assign(tf.zeros_like(queue))
        local, global_ = self._conditioning(roll, program)
        padded = tf.transpose(padded_primer)  # (bucket, batch)
        rows = tf.range(batch)
        outputs = tf.TensorArray(tf.int32, size=tf.shape(padded)[0]).write(0, padded[0])

        def body(t, code, outputs):
            x = self.embedding(code)
            local_t = local[:, t // self.config.hop] if local is not None else None
            skip_sum = 0.0
            for block, queue in zip(self.blocks, queues, strict=True):
                position = t % block.dilation
                past = tf.gather(queue, position, axis=1)
                queue.scatter_nd_update(tf.stack([rows, tf.fill([batch], position)], axis=1), x)
                x, skip = block.gate(past, x, local_t, global_)
                skip_sum = skip_sum + skip
            drawn = self._sample(self.logits(self.post(tf.nn.relu(skip_sum))), seed, t)
            following = tf.where(t + 1 < primer_length, padded[t + 1], drawn)
            return t + 1, following, outputs.write(t + 1, following)

        _, _, outputs = tf.while_loop(lambda t, *_: t < total - 1, body, (tf.constant(0), padded[0], outputs))
        return tf.transpose(outputs.stack())

    def generate(self, roll=None, program=None, length: int = 8000, seed: int = 0, primer=None, batch: int = 1):
        """Codes (B, primer + length): the primer (default: one silent sample) and `length` new ones."""
        primer = np.full((batch, 1), SILENCE, np.int32) if primer is None else np.asarray(primer, np.int32)
        total = primer.shape[1] + length
        bucket = math.ceil(total / self.LENGTH_BUCKET) * self.LENGTH_BUCKET
        roll, program = self._defaults(roll, program, primer.shape[0], bucket)
        if getattr(self, "_queues_batch", None) != primer.shape[0]:
            self._queues = [tf.Variable(tf.zeros([primer.shape[0], b.dilation, b.channels]), trainable=False) for b in self.blocks]
            self._queues_batch = primer.shape[0]
        padded = np.pad(primer, [(0, 0), (0, bucket - primer.shape[1])])
        result = self._fast(tf.constant(padded), tf.constant(primer.shape[1]), tf.constant(total), roll, program,
                            tf.constant(seed, tf.int64), self._queues)
        return result.numpy()[:, :total]

    def _defaults(self, roll, program, batch, total):
        frames = math.ceil(total / self.config.hop) + 1
        if self.local_projection is not None and roll is None:
            raise MusicTFError("this WaveNet is locally conditioned: give a piano roll")
        if roll is not None:
            roll = np.asarray(roll, np.float32)
            if len(roll.shape) == 2:
                roll = np.repeat(roll[None], batch, axis=0)
            roll = np.pad(roll, [(0, 0), (0, max(0, frames - roll.shape[1])), (0, 0)])[:, :frames]
        else:
            roll = np.zeros((batch, frames, NUM_KEYS), np.float32)
        program = np.zeros((batch,), np.int32) if program is None else np.broadcast_to(np.asarray(program, np.int32), (batch,))
        return tf.constant(roll), tf.constant(program)

    def generate_naive(self, roll=None, program=None, length: int = 100, seed: int = 0, primer=None, batch: int = 1):
        """The slow reference: the whole stack rerun over the receptive field for every sample."""
        primer = np.full((batch, 1), SILENCE, np.int32) if primer is None else np.asarray(primer, np.int32)
        roll, program = self._defaults(roll, program, primer.shape[0], primer.shape[1] + length)
        codes, hop, field = primer.copy(), self.config.hop, self.config.receptive_field
        for t in range(primer.shape[1] - 1, primer.shape[1] + length - 1):
            start = max(0, t - field + 1) // hop * hop
            window = codes[:, start : t + 1]
            frames = math.ceil(window.shape[1] / hop)
            padded = np.pad(window, [(0, 0), (0, frames * hop - window.shape[1])])
            inputs = {"codes": tf.constant(padded)}
            if self.local_projection is not None:
                inputs["roll"] = roll[:, start // hop : start // hop + frames]
            if self.program_embedding is not None:
                inputs["program"] = program
            logits = self._forward(inputs)[:, t - start]
            drawn = self._sample(logits, tf.constant(seed, tf.int64), t).numpy()
            codes = np.concatenate([codes, drawn[:, None]], axis=1)
        return codes


def write_samples(run, model, data: PreparedData, *, num: int, length: int, seed: int, out_dir, prime_file=None,
                  temperature=None, top_k=None, top_p=None, roll_file=None, program=None) -> list[dict]:
    """WAV samples with a waveform/spectrogram PNG each. The roll comes from `roll_file` (any
    symbolic file, e.g. a sample of experiment 4) or from test-split pieces; `program` names the
    timbre (default: the piece's)."""
    from musictf.data.audio import WAVFormatError, mu_law_decode, read_wav, write_wav
    from musictf.data.corpus import read_notes
    from musictf.plots import save_waveform_and_spectrogram

    config, representation, out_dir = run.config, data.representation, Path(out_dir)
    names = config.program_names
    if program is not None and program not in names:
        raise MusicTFError(f"--program {program}: this run knows {', '.join(names)}")
    if roll_file:
        notes = read_notes(roll_file, "--roll")
        sources = [(Path(roll_file).name, representation.encode_notes(notes, 0)[1], 0)] * num
    else:
        items = data.arrays["test"] or data.arrays["valid"] or data.arrays["train"]
        pieces = data.splits["test"] or data.splits["valid"] or data.splits["train"]
        sources = [(pieces[i % len(items)].piece_id, items[i % len(items)][1], items[i % len(items)][2]) for i in range(num)]
    programs = [names.index(program) if program is not None else source[2] for source in sources]
    primer = None
    if prime_file:
        try:
            waveform, rate = read_wav(prime_file)
        except WAVFormatError as error:
            raise MusicTFError(f"--prime {prime_file}: {error}") from None
        if rate != config.sample_rate:
            raise MusicTFError(f"--prime {prime_file}: {rate} Hz, but this run works at {config.sample_rate} Hz")
        primer = np.repeat(mu_law_encode(waveform)[None], num, axis=0)
    frames = math.ceil((length + 1) / config.hop) + 1
    rolls = np.stack([np.pad(roll, [(0, max(0, frames - len(roll))), (0, 0)])[:frames] for _, roll, _ in sources])
    sampler = WaveNetSampler(model, config, temperature=config.temperature if temperature is None else temperature)
    started = time.perf_counter()
    codes = sampler.generate(rolls, np.asarray(programs), length=length, seed=seed, primer=primer, batch=num)
    seconds = time.perf_counter() - started
    written = []
    for index, row in enumerate(codes):
        waveform = mu_law_decode(row)
        stem = f"sample_{index + 1}"
        write_wav(waveform, out_dir / f"{stem}.wav", config.sample_rate)
        save_waveform_and_spectrogram(waveform, config.sample_rate, out_dir / f"{stem}.png",
                                      f"{run.experiment.slug} · {stem} · {names[programs[index]]} · roll of {sources[index][0]}")
        written.append({"wav": f"{stem}.wav", "png": f"{stem}.png", "roll": sources[index][0], "program": names[programs[index]]})
    files.write_json(out_dir / "samples.json", {
        "samples": written, "seed": seed, "length": length, "sample_rate": config.sample_rate,
        "samples_per_second": num * length / seconds, "training_audio_renderer": representation.renderer or "unknown",
    })
    return written


EXPERIMENT = Experiment(
    number=5,
    name="wavenet",
    config_class=WaveNetConfig,
    kind="audio",
    target="audio",
    build_model=build_model,
    compile_arguments=compile_arguments,
    sampler=WaveNetSampler,
    make_representation=make_representation,
    make_datasets=make_datasets,
    test_metrics=test_metrics,
    write_samples=write_samples,
    prepare_source=prepare_wav_folder,
)
