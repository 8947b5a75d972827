"""Figure 4: experiments 2 and 4 written in PyTorch (the original project's framework), with the
same architecture, batch, sequence length, loss, optimizer and thread count as musictf's config.

PyTorch is only in the `[bench]` extra (`pip install torch==2.13.0`), never a runtime dependency.
The PyTorch loop computes the loss only; musictf's `fit` also updates its metrics (precision,
recall, F1, frame NLL), so the comparison, if anything, favours PyTorch.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from musictf.metrics import logit


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def build(number: int, config, features: int):
    """Experiment 2 (stacked LSTM -> head on the last step, or on every step with `every_step_loss`)
    or 4 (encoder-decoder LSTM; with scheduled sampling the decoder runs teacher-forced, then on a
    mix of teacher and drawn frames), with the within-frame term on the target frames where the
    config has it."""
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(config.units, config.dense_units)
            self.dropout = nn.Dropout(config.dense_dropout)
            self.logits = nn.Linear(config.dense_units, features)
            nn.init.constant_(self.logits.bias, logit(config.initial_flag_probability))

        def forward(self, x):
            return self.logits(self.dropout(torch.relu(self.hidden(x))))

    class FrameAutoregression(nn.Module):  # layers.FrameAutoregression: sum_{j<k} x_j W[j, k]
        def __init__(self):
            super().__init__()
            self.kernel = nn.Parameter(torch.zeros(features, features))
            self.register_buffer("mask", torch.triu(torch.ones(features, features), diagonal=1))

        def forward(self, frames):
            return frames @ (self.kernel * self.mask)

    def lstm():
        return nn.LSTM(
            features,
            config.units,
            config.num_layers,
            batch_first=True,
            dropout=config.lstm_dropout if config.num_layers > 1 else 0.0,
        )

    within_frame = FrameAutoregression if config.frame_autoregression else None

    class Seq2One(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = lstm(), Head()
            self.within_frame = within_frame() if within_frame else None

        def forward(self, frames, target=None):
            """`target`: the frame after the window, or (every_step_loss) after each of its steps."""
            outputs, _ = self.lstm(frames)
            logits = self.head(outputs if config.every_step_loss else outputs[:, -1])
            return logits + self.within_frame(target) if self.within_frame is not None else logits

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder, self.head = lstm(), lstm(), Head()
            self.ratio = config.teacher_forcing_ratio
            self.scheduled = config.samples_own_frames  # as musictf's build_model: a second pass only then
            self.within_frame = within_frame() if within_frame else None

        def forward(self, encoder_input, decoder_input, target=None):
            _, state = self.encoder(encoder_input)
            logits = self.head(self.decoder(decoder_input, state)[0])
            if self.scheduled:
                drawn = torch.bernoulli(torch.sigmoid(logits.detach()))
                own = torch.cat([decoder_input[:, :1], drawn[:, :-1]], dim=1)
                use_teacher = torch.rand(decoder_input.shape[0], decoder_input.shape[1], 1) < self.ratio
                mixed = torch.where(use_teacher, decoder_input, own)
                logits = self.head(self.decoder(mixed, state)[0])
            return logits + self.within_frame(target) if self.within_frame is not None else logits

    if number == 2:
        return Seq2One()
    if number == 4:
        return Seq2Seq()
    raise ValueError(f"no PyTorch version of experiment {number}")


def bce_plus_focal(logits, targets, alpha: float, gamma: float, bce_weight: float, focal_weight: float):
    import torch
    import torch.nn.functional as F

    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    probabilities = torch.sigmoid(logits)
    p_t = targets * probabilities + (1 - targets) * (1 - probabilities)
    focal = bce * (1 - p_t) ** gamma * (targets * alpha + (1 - targets) * (1 - alpha))
    return (bce_weight * bce + focal_weight * focal).mean()


class Trainer:
    """Adam (per-tensor clipnorm, as Keras's `clipnorm`) on the musictf config's loss."""

    def __init__(self, number: int, config, features: int):
        import torch

        torch.manual_seed(config.seed)
        self.number, self.config = number, config
        self.model = build(number, config, features)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)

    def loss(self, inputs, targets):
        import torch
        import torch.nn.functional as F

        inputs = [
            torch.from_numpy(array) for array in (inputs if isinstance(inputs, (tuple, list)) else [inputs])
        ]
        if self.number == 2:
            targets = torch.from_numpy(targets)
            if self.config.every_step_loss:  # the mean over every step, each step's target the frame after it
                frames = inputs[0]
                targets = torch.cat([frames[:, 1:], targets[:, None]], dim=1)
                inputs = [frames, targets] if self.config.frame_autoregression else [frames]
            return F.binary_cross_entropy_with_logits(self.model(*inputs), targets)
        logits = self.model(*inputs)
        c = self.config
        return bce_plus_focal(
            logits, torch.from_numpy(targets), c.focal_alpha, c.focal_gamma, c.bce_weight, c.focal_weight
        )

    def step(self, inputs, targets) -> float:
        import torch

        self.optimizer.zero_grad()
        loss = self.loss(inputs, targets)
        loss.backward()
        if self.config.clipnorm:
            for parameter in self.model.parameters():
                torch.nn.utils.clip_grad_norm_([parameter], self.config.clipnorm)
        self.optimizer.step()
        return float(loss.detach())

    def round(self, batches: list) -> float:
        """Median seconds per step over `batches` (the first step excluded, as for Keras)."""
        self.model.train()
        ends = []
        for inputs, targets in batches:
            self.step(inputs, targets)
            ends.append(time.perf_counter())
        return statistics.median(np.diff(ends))
