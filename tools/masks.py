"""Mask helpers: SAM loading and prediction, COCO RLE encoding, overlay images.

They are not specific to the `segment` tool (whose spatial mode is their first
user): anything that produces masks needs the same SAM loading, prompting and
encoding, so they are shared here instead of living inside one tool.
`MaskPredictor` loads a segment-anything (SAM) model once and gives the best
mask for a point or box prompt; `encode_rle` / `decode_rle` convert masks to
and from COCO compressed run-length encoding (the `Rle` model, the format
pycocotools reads); `draw_overlay` draws a mask and its prompt on the frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from mcr.tools.base import ToolFailure

SAM_WEIGHTS_HELP = (
    "set the tool setting `sam_checkpoint` to a segment-anything checkpoint file, e.g. "
    "sam_vit_b_01ec64.pth from https://github.com/facebookresearch/segment-anything#model-checkpoints "
    "(and `sam_model_type` to vit_b, vit_l or vit_h to match it)"
)


class Rle(BaseModel):
    """A binary mask as COCO run-length encoding (compressed string, column-major)."""

    size: tuple[int, int] = Field(description="[height, width]")
    counts: str


class MaskPredictor:
    """A loaded SAM (segment-anything) predictor; reused across calls (loading is slow)."""

    def __init__(self, predictor: Any, name: str = "custom"):
        """`predictor`: a segment_anything SamPredictor; `name` goes into cache keys."""
        self.predictor = predictor
        self.name = name

    @staticmethod
    def name_for(model_type: str, checkpoint: str | None) -> str:
        return f"{model_type}:{checkpoint or 'random-seed0'}"

    @classmethod
    def load(cls, model_type: str, checkpoint: str | None, allow_random: bool) -> MaskPredictor:
        try:
            import torch
            from segment_anything import SamPredictor, sam_model_registry
        except ImportError as exc:
            raise ToolFailure(
                f"segment-anything is not installed ({exc}): pip install 'internvideo3-mcr[sam]'", "sam_not_installed"
            ) from None
        if checkpoint is None and not allow_random:
            raise ToolFailure(f"no SAM weights configured: {SAM_WEIGHTS_HELP}", "sam_not_configured")
        if checkpoint is None:
            torch.manual_seed(0)  # untrained but repeatable
        try:
            # Our own torch.load with weights_only=True (segment_anything's relies on torch's default, which an
            # environment variable can turn off): a checkpoint holding pickled code is refused, never run.
            state = torch.load(checkpoint, map_location="cpu", weights_only=True) if checkpoint is not None else None
            model = sam_model_registry[model_type](checkpoint=None)
            if state is not None:
                model.load_state_dict(state)
        except Exception as exc:  # torch.load raises pickle, zip and size-mismatch errors
            raise ToolFailure(
                f"cannot load SAM checkpoint {checkpoint} as {model_type}: {exc}; {SAM_WEIGHTS_HELP}",
                "sam_checkpoint_invalid",
            ) from None
        return cls(SamPredictor(model.eval()), cls.name_for(model_type, checkpoint))

    def predict(
        self, image: np.ndarray, point: list[float] | None, box: list[float] | None
    ) -> tuple[np.ndarray, float]:
        """Best (H, W) bool mask and its score for the prompt on an (H, W, 3) RGB image."""
        import torch

        with torch.inference_mode():
            self.predictor.set_image(image)
            masks, scores, _ = self.predictor.predict(
                point_coords=np.array([point], np.float32) if point is not None else None,  # (1, 2)
                point_labels=np.array([1]) if point is not None else None,
                box=np.array(box, np.float32) if box is not None else None,  # (4,)
                multimask_output=box is None,  # a lone point is ambiguous: pick the best of 3
            )  # masks (K, H, W) bool, scores (K,)
        best = int(np.argmax(scores))
        return masks[best], float(scores[best])


def draw_overlay(image: np.ndarray, mask: np.ndarray, point: list[float] | None, box: list[float] | None) -> np.ndarray:
    """The frame with the mask tinted red, the prompt box in yellow and the point in green."""
    import cv2

    out = image.copy()  # (H, W, 3)
    out[mask] = (0.45 * out[mask] + 0.55 * np.array([255, 0, 0])).astype(np.uint8)
    if box is not None:
        cv2.rectangle(out, (int(box[0]), int(box[1])), (int(box[2]), int(box[3])), (255, 220, 0), 2)
    if point is not None:
        cv2.circle(out, (int(point[0]), int(point[1])), 5, (0, 255, 0), -1)
    return out


def encode_rle(mask: np.ndarray) -> Rle:
    """COCO compressed RLE of an (H, W) mask: runs over column-major pixels, starting with 0s."""
    flat = np.asarray(mask, bool).flatten(order="F")  # (H*W,)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs  # counts always start with a run of zeros
    chars = []
    for i, run in enumerate(runs):
        x = run - runs[i - 2] if i > 2 else run  # delta against the run two back
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            chars.append(chr((c | 0x20 if more else c) + 48))
    return Rle(size=(int(mask.shape[0]), int(mask.shape[1])), counts="".join(chars))


def decode_rle(rle: Rle) -> np.ndarray:
    """The (H, W) bool mask of a COCO compressed RLE."""
    runs: list[int] = []
    s, p = rle.counts, 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        runs.append(x + runs[-2] if len(runs) > 2 else x)
    h, w = rle.size
    values = np.zeros(len(runs), bool)
    values[1::2] = True
    flat = np.repeat(values, runs)
    if flat.size != h * w:
        raise ValueError(f"RLE covers {flat.size} pixels, not {h}x{w}")
    return flat.reshape((w, h)).T
