"""The bundle's checkpoint: open_lm's state dict as safetensors (tensors only, no pickle), and its checks.

The file is a function of the tensors alone (names sorted, one metadata key), so bundling the same entry twice
gives the same bytes. Reading it back never runs code: the header is JSON, the rest raw tensor bytes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.bundle import BundleUnusable

if TYPE_CHECKING:
    import torch

    from harness.tracks import ModelShape

#: A safetensors header larger than this is not a model of any track (and is not read into memory).
MAX_HEADER_BYTES = 64 << 20


def to_safetensors(weights: str | Path, out: Path) -> dict[str, Any]:
    """Convert a checkpoint (epoch_N.pt, read weights-only) to `out`; returns {tensors, parameters}."""
    from safetensors.torch import save

    from harness.io.files import write_bytes_atomic
    from harness.model import load_weights

    state = load_weights(weights)
    # tied weights share storage, which safetensors refuses: every tensor is written as its own contiguous copy
    tensors = {name: state[name].detach().cpu().contiguous().clone() for name in sorted(state)}
    write_bytes_atomic(out, save(tensors, metadata={"format": "pt"}))
    return {"tensors": len(tensors), "parameters": sum(t.numel() for t in tensors.values())}


def read_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{tensor name: (dtype, shape)} from a safetensors file's JSON header, checked for a sane layout."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) != 8:
                raise ValueError("shorter than a safetensors header")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES:
                raise ValueError(f"header of {length:,} bytes")
            header = json.loads(fh.read(length))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise BundleUnusable(f"{path}: not a safetensors file ({exc})") from None
    if not isinstance(header, dict):
        raise BundleUnusable(f"{path}: not a safetensors file (its header is not a JSON object)")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or not isinstance(info.get("shape"), list):
            raise BundleUnusable(f"{path}: tensor {name!r} has no shape in the safetensors header")
        out[name] = (str(info.get("dtype")), tuple(int(n) for n in info["shape"]))
    return out


def expected_shapes(shape: ModelShape) -> dict[str, tuple[int, ...]]:
    """The state dict's tensor shapes for a model shape (built on the meta device: no memory)."""
    from harness.model import build_model

    return {k: tuple(v.shape) for k, v in build_model(shape, device="meta").state_dict().items()}


def check_shapes(path: Path, shape: ModelShape, track: str) -> None:
    """Raise BundleUnusable naming the first tensors that are missing, extra or of another shape."""
    found, want = read_header(path), expected_shapes(shape)
    optional = {k for k in want if k.endswith("pos_embed.inv_freq")}  # recomputed when absent (harness.model)
    problems = [f"{k} is missing" for k in want if k not in found and k not in optional]
    problems += [f"{k} is not in track {track}'s model" for k in found if k not in want]
    problems += [
        f"{k} has shape {list(found[k][1])}, track {track}'s model has {list(want[k])}"
        for k in want
        if k in found and found[k][1] != want[k]
    ]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise BundleUnusable(f"{path}: not a checkpoint of track {track}'s model: {'; '.join(problems[:3])}{more}")


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (no code is run to read them)."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for every kind of damage
        raise BundleUnusable(f"{path}: cannot be read as safetensors ({exc})") from None


def compare_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, float]:
    """{name: max absolute difference} of the tensors that differ (inf where one side lacks a tensor or the shapes
    differ); empty when every tensor is bit-identical."""
    import torch

    out = {}
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if x is None or y is None or x.shape != y.shape:
            out[name] = float("inf")
        elif not torch.equal(x, y):
            out[name] = float((x.float() - y.float()).abs().max())
    return out
