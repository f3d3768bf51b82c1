"""VideoTextModel (frames and sound -> encoders -> fusion with text -> task head) and the
Protocols every part follows. Nothing inherits from these; they document the contract and let
type checkers check it."""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.config import ConfigError
from duomo.models.layers import PlaceMotion, encode_valid_frames, time_code, valid_fractions


class FrameEncoder(Protocol):
    """Per-frame (spatial) encoder: frames (B, T, C, H, W) float in [0, 1], mask (B, T) -> (B, T, D).

    Normalizes inside ``forward`` with its own mean/std buffers."""

    out_dim: int

    def __call__(self, frames: Tensor, frame_mask: Tensor) -> Tensor: ...


class TemporalEncoder(Protocol):
    """Over frame features: (B, T, D), mask (B, T) -> tokens (B, T', D), mask (B, T')."""

    def __call__(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]: ...


class AudioEncoder(Protocol):
    """Log-mel spectrogram (B, A, M), mask (B, A) -> tokens (B, A', D), mask (B, A')."""

    def __call__(self, mel: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]: ...


class TextEncoder(Protocol):
    """Token ids (B, L) long, mask (B, L) bool -> (B, L, D)."""

    def __call__(self, ids: Tensor, mask: Tensor) -> Tensor: ...


class Fusion(Protocol):
    """video (B, N, D), mask (B, N) + text (B, L, D), mask (B, L) -> Fused. L may be 0.

    A fusion whose class sets ``takes_rows = True`` is also called with one video row per video
    and ``rows=`` (B,) long, the video of each text row, so it can do per-video work once."""

    def __call__(self, video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor) -> Fused: ...


class Head(Protocol):
    """Owns its task's loss and decoding."""

    def __call__(self, fused: Fused, batch: VideoBatch) -> HeadOutput: ...

    def loss(self, out: HeadOutput, batch: VideoBatch) -> Tensor: ...

    def predict(self, out: HeadOutput) -> list: ...


class VideoTextModel(nn.Module):
    """Encodes each video once (frames, then time, plus sound), repeats it for each row,
    fuses it with the row's text and hands the result to the task head."""

    def __init__(self, *, dim: int, video: nn.Module, temporal: nn.Module, audio: nn.Module | None,
                 text: nn.Module, fusion: nn.Module, head: nn.Module, cache_trunk: bool = False,
                 grid_tokens: bool = False, cell_pool: int = 0, cell_motion: bool = False,
                 place_tokens: bool = False, frame_words: int = 0, frame_word_weight: float = 0.0,
                 text_groups: int = 1):
        super().__init__()
        self.dim = dim
        self.video = video
        self.cache_trunk = cache_trunk
        """The feature cache holds the frame encoder's trunk features (its ``trunk_images``, before
        ``project``) and the model runs its ``project`` on them (``model.tune_video_proj``)."""
        self.grid_tokens = grid_tokens
        """One token per grid cell of each frame (``model.video_tokens: grid``), each cell's run
        through time encoded on its own; the cells are read from the encoder's trunk."""
        if grid_tokens:
            cells, width = video.cell_shape
            self.cell_proj = nn.Linear(width, dim)
            self.cell_norm = nn.LayerNorm(dim)
            self.cell_code = nn.Parameter(torch.zeros(cells, dim))  # where each cell is
            nn.init.normal_(self.cell_code, std=0.02)
        self.cell_pool = None
        """``model.cell_pool``: an MLP run on each place of each frame (``cell_motion``: a
        ``PlaceMotion`` reading of it), maximum over the places, added to the frame's token."""
        if cell_pool:
            width = video.cell_shape[1]
            if cell_motion:  # each place with its neighbours, now and its change since the frame before
                side = math.isqrt(video.place_cells)
                if side * side != video.place_cells:
                    raise ConfigError(f"model.cell_motion: needs a square grid of places, the frame encoder has {video.place_cells}")
                self.cell_pool = PlaceMotion(width=width, hidden=cell_pool, out_dim=dim, side=side)
            else:
                self.cell_pool = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, cell_pool), nn.ReLU(),
                                               nn.Linear(cell_pool, dim))
            self.cell_pool_norm = nn.LayerNorm(dim)
        self.place_tokens = place_tokens
        """``model.place_tokens``: each place of each frame, read by ``cell_pool``, is also a token
        of its own, after the frame tokens (``encode_places``)."""
        if place_tokens:
            if self.cell_pool is None:
                raise ConfigError("model.place_tokens: the place tokens are cell_pool's readings; set model.cell_pool too")
            self.place_norm = nn.LayerNorm(dim)
            self.place_code = nn.Parameter(torch.zeros(video.place_cells, dim))  # where each place is
            nn.init.normal_(self.place_code, std=0.02)
        self.frame_word_head = nn.Linear(dim, frame_words) if frame_words else None
        """``model.frame_words``: logits of the words each frame token names (``frame_word_loss``)."""
        self.frame_word_weight = frame_word_weight
        self.text_groups = text_groups
        """``model.text_groups``: rows are fused in this many groups of similar text length (``fuse_media``)."""
        self.temporal = temporal
        self.audio = audio
        self.text = text
        self.fusion = fusion
        self.head = head
        self.modality = nn.Parameter(torch.zeros(2, dim))  # row 0 tags frame tokens, row 1 sound tokens
        nn.init.normal_(self.modality, std=0.02)
        # Frame and sound tokens carry a code of when they happen (as a fraction of the video), so
        # the fusion can line up what is seen with what is heard.
        self.time_scale = nn.Parameter(torch.tensor(0.1))

    def cached_frames(self, frames: Tensor, frame_mask: Tensor) -> Tensor:
        """What the feature cache stores for a frozen frame encoder: per-frame features (V, T, D),
        or with ``cache_trunk`` the wider (V, T, trunk_dim) ones its projection reads."""
        if self.cache_trunk:
            return encode_valid_frames(self.video.trunk_images, frames, frame_mask, self.video.trunk_dim)
        return self.video(frames, frame_mask)

    def encode_sound(self, mel: Tensor, mel_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Sound tokens (V, A', D) and mask (V, A'): what the feature cache stores for a frozen
        sound encoder."""
        return self.audio(mel, mel_mask)

    def encode_media(self, batch: VideoBatch) -> tuple[Tensor, Tensor]:
        """Video and sound tokens (V, N, D) with mask (V, N), one entry per video."""
        tokens, mask, _ = self.encode_media_places(batch)
        return tokens, mask

    def encode_media_places(self, batch: VideoBatch) -> tuple[Tensor, Tensor, Tensor | None]:
        """``encode_media``'s tokens and mask, and with ``cell_pool`` its place readings of each
        frame (V, T, P, D), which ``Fused.places`` carries to the head; None without."""
        readings = None
        if self.grid_tokens:
            tokens, mask = self.encode_cells(batch)
        else:
            if batch.features is not None and not self.cache_trunk:
                per_frame = batch.features  # a frozen encoder's cached output
            elif batch.features is None and self.cell_pool is None:
                per_frame = self.video(batch.frames, batch.frame_mask)
            else:  # from the trunk, cached or run here; padded frames stay zeros, as the encoder leaves them
                trunk = self.trunk(batch)
                readings = self.read_places(trunk) if self.cell_pool is not None else None
                per_frame = self.frame_tokens(trunk, readings)
                per_frame = per_frame * batch.frame_mask.unsqueeze(-1).to(per_frame.dtype)
            tokens, mask = self.temporal(per_frame, batch.frame_mask)
            tokens = tokens + self.modality[0] + self.time_scale * time_code(valid_fractions(mask), self.dim)
            if self.place_tokens:  # after the frame tokens, which the moment and summarize heads read first
                places, place_mask = self.encode_places(readings, batch.frame_mask)
                tokens, mask = torch.cat([tokens, places], dim=1), torch.cat([mask, place_mask], dim=1)
        sound = sound_mask = None
        if batch.sound is not None:  # a frozen sound encoder's cached tokens
            sound, sound_mask = batch.sound, batch.sound_mask
        elif self.audio is not None and batch.audio is not None:
            sound, sound_mask = self.encode_sound(batch.audio, batch.audio_mask)
        if sound is not None:
            sound = sound + self.modality[1] + self.time_scale * time_code(valid_fractions(sound_mask), self.dim)
            tokens = torch.cat([tokens, sound], dim=1)
            mask = torch.cat([mask, sound_mask], dim=1)
        return tokens, mask, readings

    def trunk(self, batch: VideoBatch) -> Tensor:
        """The frame encoder's trunk features (V, T, trunk_dim): the cached ones (``cache_trunk``),
        or run here on the real frames."""
        if batch.features is not None:
            return batch.features
        return encode_valid_frames(self.video.trunk_images, batch.frames, batch.frame_mask, self.video.trunk_dim)

    def frame_tokens(self, trunk: Tensor, readings: Tensor | None = None) -> Tensor:
        """(..., T, trunk_dim) -> (..., T, D): the encoder's projection, plus with ``cell_pool`` the
        maximum over the frame's places of their readings (``read_places``, or ``readings`` when
        already read)."""
        tokens = self.video.project(trunk)
        if self.cell_pool is None:
            return tokens
        if readings is None:
            readings = self.read_places(trunk)
        return tokens + self.cell_pool_norm(readings.amax(dim=-2))

    def read_places(self, trunk: Tensor) -> Tensor:
        """(..., T, trunk_dim) -> (..., T, places, D): ``cell_pool`` run on each place of each frame
        (``cell_motion`` reads the frame before too, so frames must come in time order along T)."""
        return self.cell_pool(self.video.cells(trunk)[..., : self.video.place_cells, :])

    def encode_places(self, readings: Tensor, frame_mask: Tensor) -> tuple[Tensor, Tensor]:
        """``place_tokens``: readings (V, T, P, D) -> tokens (V, T * P, D), frame-major, each the
        place's reading with the code of its place and its frame's time, and mask (V, T * P)."""
        videos, frames, num_places, dim = readings.shape
        when = self.time_scale * time_code(valid_fractions(frame_mask), dim)  # (V, T, D)
        tokens = self.place_norm(readings) + self.place_code + self.modality[0] + when.unsqueeze(2)
        tokens = tokens * frame_mask[:, :, None, None].to(tokens.dtype)  # padded frames stay zeros
        return tokens.reshape(videos, frames * num_places, dim), frame_mask.repeat_interleave(num_places, dim=1)

    def encode_cells(self, batch: VideoBatch) -> tuple[Tensor, Tensor]:
        """``grid_tokens``: frame tokens (V, S * T', D), cell-major, and mask, from the trunk
        (cached, or run here on the real frames)."""
        cells = self.cell_norm(self.cell_proj(self.video.cells(self.trunk(batch)))) + self.cell_code  # (V, T, S, D)
        videos, frames, num_cells, dim = cells.shape
        frame_mask = batch.frame_mask
        cells = cells * frame_mask[:, :, None, None].to(cells.dtype)  # padded frames stay zeros
        per_cell = cells.transpose(1, 2).reshape(videos * num_cells, frames, dim)
        tokens, mask = self.temporal(per_cell, frame_mask.repeat_interleave(num_cells, dim=0))
        tokens = tokens + self.modality[0] + self.time_scale * time_code(valid_fractions(mask), dim)
        return tokens.reshape(videos, -1, dim), mask.reshape(videos, -1)

    def fuse(self, batch: VideoBatch) -> Fused:
        return self.fuse_media(batch, *self.encode_media_places(batch))

    def fuse_media(self, batch: VideoBatch, media: Tensor, media_mask: Tensor, places: Tensor | None = None) -> Fused:
        """The fusion of ``encode_media``'s tokens with the rows' text (repeated per row), carrying
        the videos' ``places`` (``encode_media_places``) along."""
        return dataclasses.replace(self._fuse_media(batch, media, media_mask), places=places)

    def _fuse_media(self, batch: VideoBatch, media: Tensor, media_mask: Tensor) -> Fused:
        if batch.text_ids is None:
            # Captioning and classification read no text: fuse once per video, then repeat per row.
            text = media.new_zeros(media.shape[0], 0, self.dim)
            text_mask = torch.zeros(media.shape[0], 0, dtype=torch.bool, device=media.device)
            fused = self.fusion(media, media_mask, text, text_mask)
            if batch.rows is None:
                return fused
            return Fused(tokens=fused.tokens[batch.rows], mask=fused.mask[batch.rows], pooled=fused.pooled[batch.rows],
                         first_frame=fused.first_frame)
        rows = batch.rows
        groups = _length_groups(batch.text_mask, self.text_groups)
        if groups is None:
            return self.fuse_rows(media, media_mask, batch.text_ids, batch.text_mask, rows)
        parts = []
        for group, length in groups:
            group_rows = rows[group] if rows is not None else group
            parts.append(self.fuse_rows(media, media_mask, batch.text_ids[group, :length],
                                        batch.text_mask[group, :length], group_rows))
        # every fusion puts the text tokens last: each group's are padded to the longest and the
        # rows put back in their order
        width = max(part.tokens.shape[1] for part in parts)
        num_rows = batch.text_ids.shape[0]
        tokens = media.new_zeros(num_rows, width, parts[0].tokens.shape[2])
        mask = torch.zeros(num_rows, width, dtype=torch.bool, device=media.device)
        pooled = media.new_zeros(num_rows, parts[0].pooled.shape[1])
        for (group, _), part in zip(groups, parts):
            tokens[group, : part.tokens.shape[1]] = part.tokens
            mask[group, : part.mask.shape[1]] = part.mask
            pooled[group] = part.pooled
        prefix = parts[0].tokens.shape[1] - parts[0].text_tokens  # the media's tokens, the same in every group
        return Fused(tokens=tokens, mask=mask, pooled=pooled, first_frame=parts[0].first_frame,
                     text_tokens=width - prefix if parts[0].text_tokens else 0)

    def fuse_rows(self, media: Tensor, media_mask: Tensor, text_ids: Tensor, text_mask: Tensor,
                  rows: Tensor | None) -> Fused:
        """Rows' text (R, L) encoded and fused with their videos' tokens (``rows``: each row's
        video in media; None: row i is video i)."""
        text = self.text(text_ids, text_mask)
        if rows is not None and getattr(self.fusion, "takes_rows", False):
            return self.fusion(media, media_mask, text, text_mask, rows=rows)
        if rows is not None:
            media, media_mask = media[rows], media_mask[rows]  # (B, N, D)
        return self.fusion(media, media_mask, text, text_mask)

    def forward(self, batch: VideoBatch) -> HeadOutput:
        media, media_mask, places = self.encode_media_places(batch)
        out = self.head(self.fuse_media(batch, media, media_mask, places), batch)
        if self.frame_word_head is not None and batch.frame_words is not None:  # training rows only
            out.frame_words = self.frame_word_head(media[:, : batch.frame_mask.shape[1]])
        return out

    def frame_word_loss(self, out: HeadOutput, batch: VideoBatch) -> Tensor:
        """``model.frame_words``: weight x the binary cross-entropy of each real frame token's words
        (``batch.frame_words``; videos whose frames have no targets, nan, are left out); 0 without."""
        if out.frame_words is None or batch.frame_words is None:
            return out.logits.new_zeros(())
        known = batch.frame_mask & ~torch.isnan(batch.frame_words[..., 0])  # (V, T)
        if not known.any():
            return out.logits.new_zeros(())
        loss = F.binary_cross_entropy_with_logits(out.frame_words[known], batch.frame_words[known])
        return self.frame_word_weight * loss


def _length_groups(text_mask: Tensor, groups: int) -> list[tuple[Tensor, int]] | None:
    """Rows sorted by text length and cut into ``groups`` runs of equal size: (row indices, the
    longest text among them) each; None when one group would do (one row per group at least)."""
    groups = min(groups, text_mask.shape[0])
    if groups < 2:
        return None
    lengths = text_mask.sum(1)
    order = torch.argsort(lengths, stable=True)
    return [(part, max(int(lengths[part].max()), 1)) for part in torch.tensor_split(order, groups)]


