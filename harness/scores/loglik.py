"""`loglik`: a document's log-likelihood under a reference checkpoint: the information-based pruning score.

"Measuring Sample Importance in Data Pruning for Training LLMs from a Data Compression Perspective" ranks
documents by their log-likelihood under a trained model (their compressed length) and prunes the least
informative. The document is tokenized with the checkpoint's tokenizer and preceded by the end-of-document token
(as in training, where documents follow each other after that token); every token is predicted, long documents in
windows of the model's context length (each window's first input is the previous window's last token).

Columns: `loglik_tokens`, `loglik_bits` (total -log2 p), `loglik_bpb` (bits per utf-8 byte) and
`loglik_token_loss` (mean nats per token). Batched; on CUDA when present.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from harness.config import doc
from harness.errors import HarnessError, UsageError
from harness.io.files import file_sha256
from harness.scores.base import Scorer, field

if TYPE_CHECKING:
    import pyarrow as pa
    from datatrove.data import Document


@dataclass(frozen=True, kw_only=True)
class LoglikScorer(Scorer):
    """Per-document log-likelihood under a harness, open_lm or safetensors checkpoint."""

    name: ClassVar[str] = "loglik"
    checkpoint: str = doc("Checkpoint: a run folder, a checkpoints/ folder, epoch_N.pt or a .safetensors file.")
    track: str = doc(
        "Track whose model shape and tokenizer to use ('' = from the checkpoint's params.txt).", default=""
    )
    batch_tokens: int = doc("Tokens per forward batch (windows are packed up to this).", default=16384)
    device: str = doc("'auto' (CUDA when present), 'cpu' or 'cuda'.", default="auto")

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise UsageError("the loglik scorer needs a checkpoint: --checkpoint PATH")
        if self.batch_tokens < 1:
            raise ValueError("batch_tokens must be positive")

    def fields(self) -> list[pa.Field]:
        import pyarrow as pa

        return [
            field("loglik_tokens", pa.int64(), "tokens scored (the document's tokens)"),
            field("loglik_bits", pa.float64(), "total information: sum of -log2 p(token)"),
            field("loglik_bpb", pa.float64(), "bits per utf-8 byte"),
            field("loglik_token_loss", pa.float64(), "mean cross-entropy per token, nats"),
        ]

    def _load(self) -> tuple[Any, Any, Any, str]:
        import torch

        from harness.evaluate.checkpoint import load_model, resolve_checkpoint
        from harness.tokenizer import load_tokenizer
        from harness.tracks import get_track

        info = resolve_checkpoint(self.checkpoint, track=get_track(self.track) if self.track else None)
        tokenizer = load_tokenizer(info.tokenizer)
        if tokenizer.get_vocab_size() > info.shape.vocab_size:
            raise HarnessError(
                f"{info.weights}: the model's vocabulary ({info.shape.vocab_size}) is smaller than the tokenizer's "
                f"{info.tokenizer.name} ({tokenizer.get_vocab_size()}); give the track the checkpoint was trained on"
            )
        device = self.device if self.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        return load_model(info, device=device), tokenizer, info, device

    def setup(self, work_dir: Any) -> None:
        object.__setattr__(self, "_loaded", self._load())

    def config(self) -> dict[str, Any]:
        _, _, info, _ = self._load()
        return {
            "name": self.name,
            "checkpoint": str(info.weights.resolve()),
            "checkpoint_sha256": file_sha256(info.weights),
            "track": info.track,
            "tokenizer": info.tokenizer.name,
            "context": info.shape.context,
            "batch_tokens": self.batch_tokens,
        }

    def score(self, docs: list[Document], rank: int) -> dict[str, list[Any]]:
        model, tokenizer, info, device = getattr(self, "_loaded", None) or self._load()
        eot, ctx = info.tokenizer.eot_id, info.shape.context
        encoded = tokenizer.encode_batch([d.text for d in docs])
        windows: list[tuple[int, list[int]]] = []  # (document, ctx+1 token window)
        for i, enc in enumerate(encoded):
            seq = [eot, *enc.ids]
            windows += [(i, seq[s : s + ctx + 1]) for s in range(0, len(seq) - 1, ctx)]
        nats = [0.0] * len(docs)
        for batch in _batches(windows, self.batch_tokens):
            for (i, _), value in zip(batch, _window_nats(model, [w for _, w in batch], device), strict=True):
                nats[i] += value
        out: dict[str, list[Any]] = {"loglik_tokens": [], "loglik_bits": [], "loglik_bpb": [], "loglik_token_loss": []}
        for d, enc, n in zip(docs, encoded, nats, strict=True):
            tokens, size = len(enc.ids) + 1, len(d.text.encode("utf-8"))
            bits = n / math.log(2)
            out["loglik_tokens"].append(tokens)
            out["loglik_bits"].append(bits)
            out["loglik_bpb"].append(bits / size if size else 0.0)
            out["loglik_token_loss"].append(n / tokens)
        return out


def _batches(windows: list[tuple[int, list[int]]], batch_tokens: int) -> list[list[tuple[int, list[int]]]]:
    """Windows grouped (longest first, so padding is small) into batches of at most `batch_tokens` padded tokens."""
    order = sorted(windows, key=lambda w: -len(w[1]))
    out, cur = [], []
    for w in order:
        if cur and (len(cur) + 1) * len(cur[0][1]) > batch_tokens:
            out.append(cur)
            cur = []
        cur.append(w)
    return [*out, cur] if cur else out


def _window_nats(model: Any, windows: list[list[int]], device: str) -> list[float]:
    """Sum of -ln p(next token) over each window's predicted tokens (all but its first)."""
    import torch

    from harness.evaluate.heldout_lm import pad_windows

    ids, mask = pad_windows(windows)
    ids, mask = ids.to(device), mask.to(device)
    with torch.inference_mode():
        logits = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
    return (loss * mask).sum(dim=1).tolist()
