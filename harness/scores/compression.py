"""`compression`: zstd-compressed size over raw size, the model-free view of a document's information content.

Repetitive text (spam, boilerplate, templated pages) compresses well and scores low; dense or random text scores
high. `compression_ratio` = len(zstd(utf-8 bytes, level)) / len(utf-8 bytes); empty documents get 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from harness.config import doc
from harness.scores.base import Scorer, field

if TYPE_CHECKING:
    import pyarrow as pa
    from datatrove.data import Document


@dataclass(frozen=True, kw_only=True)
class CompressionScorer(Scorer):
    """zstd compression ratio of each document (one compressor per task, no dictionary)."""

    name: ClassVar[str] = "compression"
    level: int = doc("zstd compression level.", default=3)

    def __post_init__(self) -> None:
        if not 1 <= self.level <= 22:
            raise ValueError(f"compression level must be 1-22, got {self.level}")

    def fields(self) -> list[pa.Field]:
        import pyarrow as pa

        return [
            field("compression_bytes", pa.int64(), "utf-8 bytes of the document"),
            field("compression_ratio", pa.float64(), "zstd-compressed size / raw size"),
        ]

    def score(self, docs: list[Document], rank: int) -> dict[str, list[Any]]:
        sizes, ratios = [], []
        for d in docs:
            raw = d.text.encode("utf-8")
            sizes.append(len(raw))
            ratios.append(len(compress(raw, self.level)) / len(raw) if raw else 1.0)
        return {"compression_bytes": sizes, "compression_ratio": ratios}


def compress(data: bytes, level: int) -> bytes:
    return _compressor(level).compress(data)


_COMPRESSORS: dict[int, Any] = {}


def _compressor(level: int) -> Any:
    import zstandard

    if level not in _COMPRESSORS:
        # No content size or checksum in the frame: the ratio measures the content, not the header.
        _COMPRESSORS[level] = zstandard.ZstdCompressor(level=level, write_content_size=False, write_checksum=False)
    return _COMPRESSORS[level]
