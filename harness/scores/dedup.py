"""`dedup`: exact and MinHash near-duplicate clusters, through datatrove's MinHash blocks.

A whole-pool stage runs datatrove's MinHash stages 1-3 (signatures per input shard, LSH buckets, clustering with
cluster ids) into `<out>/_work/minhash/`; the per-shard pass then reads stage 3's `.remove` and `.clusters`
files for its shard. Columns:

- `exact_cluster`: hex xxhash64 of the text after lower-casing and collapsing whitespace (datatrove's
  `simplify_text`); documents with equal values are exact duplicates, so keeping the first of each value
  (`harness select --unique exact_cluster`) is exact deduplication;
- `minhash_cluster`: datatrove's cluster id of the document's near-duplicate cluster, null for a document
  with no near duplicate;
- `minhash_keep`: false for every member of a cluster except the one datatrove keeps (its union-find root), so
  `--where minhash_keep` is MinHash deduplication.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.config import doc
from harness.scores.base import Scorer, field

if TYPE_CHECKING:
    import pyarrow as pa
    from datatrove.data import Document


@dataclass(frozen=True, kw_only=True)
class DedupScorer(Scorer):
    """Exact-text hashes and MinHash LSH clusters (word n-grams, `buckets` bands of `rows` hashes)."""

    name: ClassVar[str] = "dedup"
    global_stage: ClassVar[bool] = True
    ngrams: int = doc("Word n-gram (shingle) size.", default=5)
    # datatrove's MinhashConfig defaults (14 x 8: pairs above a Jaccard similarity of about 0.72 collide). At
    # 16 x 4 (about 0.5) the sandbox's templated clean pages about one entity cluster together and dedup removed
    # 69% of clean documents but only 42% of wrong-fact ones; its subset scored 0.284 against random's 0.348.
    buckets: int = doc("LSH bands.", default=14)
    rows: int = doc(
        "Hashes per band; pairs above a Jaccard similarity of about (1/buckets)^(1/rows) collide.", default=8
    )
    seed: int = doc("Seed of the hash functions.", default=1)
    language: str = doc("Language of datatrove's word tokenizer.", default="en")

    def __post_init__(self) -> None:
        if min(self.ngrams, self.buckets, self.rows) < 1:
            raise ValueError("dedup ngrams, buckets and rows must be positive")

    def fields(self) -> list[pa.Field]:
        import pyarrow as pa

        return [
            field("exact_cluster", pa.string(), "hash of the normalised text: equal values are exact duplicates"),
            field("minhash_cluster", pa.int64(), "near-duplicate cluster id (null: no near duplicate)", True),
            field("minhash_keep", pa.bool_(), "false for the cluster members that MinHash dedup removes"),
        ]

    def minhash_config(self) -> Any:
        from datatrove.pipeline.dedup.minhash import MinhashConfig

        return MinhashConfig(n_grams=self.ngrams, num_buckets=self.buckets, hashes_per_bucket=self.rows, seed=self.seed)

    def global_pipelines(self, reader: Any, work_dir: Path, n_tasks: int) -> list[tuple[str, list[Any], int]]:
        """(name, pipeline, tasks) of the stages that must finish before the per-shard pass."""
        from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupSignature

        from harness.scores.words import shared_tokenizer

        root = work_dir / "minhash"
        config = self.minhash_config()
        words = shared_tokenizer(self.language)
        return [
            ("minhash-signatures", [reader, MinhashDedupSignature(str(root / "sigs"), config=config, language=words)], n_tasks),
            ("minhash-buckets", [MinhashDedupBuckets(str(root / "sigs"), str(root / "buckets"), config=config)], self.buckets),
            ("minhash-clusters", [MinhashDedupCluster(str(root / "buckets"), str(root / "clusters"), config=config, save_cluster_id=True)], 1),
        ]  # fmt: skip

    def preload(self) -> None:
        from harness.scores.words import preload

        preload(self.language)

    def setup(self, work_dir: Path) -> None:
        object.__setattr__(self, "_clusters_dir", Path(work_dir) / "minhash" / "clusters")
        object.__setattr__(self, "_maps", {})

    def _rank_maps(self, rank: int) -> tuple[set[int], dict[int, int]]:
        maps: dict[int, tuple[set[int], dict[int, int]]] = self._maps  # type: ignore[attr-defined]
        if rank not in maps:
            folder: Path = self._clusters_dir  # type: ignore[attr-defined]
            remove = _read_uints(folder / f"{rank:06d}.remove", 1)
            pairs = _read_uints(folder / f"{rank:06d}.clusters", 2)
            maps.clear()  # one shard at a time per task
            maps[rank] = ({r[0] for r in remove}, {d: c for d, c in pairs})
        return maps[rank]

    def score(self, docs: list[Document], rank: int) -> dict[str, list[Any]]:
        import xxhash
        from datatrove.utils.text import TextNormConfig, simplify_text

        norm = TextNormConfig(
            lowercase=True, norm_whitespace=True, remove_punctuation=False, norm_unicode_diacritics=False,
            norm_numbers=False,
        )  # fmt: skip
        remove, clusters = self._rank_maps(rank)
        out: dict[str, list[Any]] = {"exact_cluster": [], "minhash_cluster": [], "minhash_keep": []}
        for d in docs:
            index = d.metadata["index"]
            out["exact_cluster"].append(xxhash.xxh64_hexdigest(simplify_text(d.text, norm).strip()))
            out["minhash_cluster"].append(clusters.get(index))
            out["minhash_keep"].append(index not in remove)
        return out


def _read_uints(path: Path, width: int) -> list[tuple[int, ...]]:
    """datatrove's little-endian uint32 records; a missing file (no duplicates in that shard) is empty."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    return list(struct.iter_unpack("<" + "I" * width, data))
