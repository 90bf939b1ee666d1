"""The training shard reader: open_lm webdataset shards in a deterministic, seekable order.

A shard directory (local path or fsspec URL) holds `manifest.jsonl` (`{"shard": name, "num_sequences": N}` per
line) and tars `<name>.tar` whose members `<key>.json.gz` are gzip JSON lists of context + 1 token ids.

The order is a pure function of (seed, sample index): pass 0 reads the shards as the tokenize step wrote them (it
already shuffled globally); every further pass over the data permutes the shard order and the sequences inside each
shard with a generator seeded by (seed, pass). So sample `g` of the stream is the same sequence on every run and
every process count, and resuming at a sample index needs nothing but that index.
"""

from __future__ import annotations

import gzip
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from harness.errors import HarnessError

DATA_SUFFIX = ".json.gz"


@dataclass(frozen=True)
class ShardInfo:
    """One tar of the manifest."""

    name: str
    url: str
    num_sequences: int


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def shard_infos(data_dir: str) -> list[ShardInfo]:
    """The shards of `data_dir`'s manifest (harness.data.read_manifest), in order; none at all is an error."""
    from harness.data import read_manifest

    rows = read_manifest(str(data_dir))
    shards = [ShardInfo(r["shard"], _join(str(data_dir), f"{r['shard']}.tar"), r["num_sequences"]) for r in rows]
    if not shards or sum(s.num_sequences for s in shards) == 0:
        raise HarnessError(f"{_join(str(data_dir), 'manifest.jsonl')} lists no sequences: the tokenized data is empty")
    return shards


def _permutation(n: int, *seed: int) -> list[int]:
    import numpy as np

    return np.random.default_rng(list(seed)).permutation(n).tolist()


class ShardStream:
    """Sequences of a shard directory as an endless, deterministic stream (pass after pass)."""

    def __init__(self, data_dir: str, *, seq_len: int, seed: int) -> None:
        self.data_dir = str(data_dir)
        self.shards = shard_infos(self.data_dir)
        self.seq_len = seq_len
        self.seed = seed
        self.num_sequences = sum(s.num_sequences for s in self.shards)

    def shard_order(self, pass_index: int) -> list[int]:
        if pass_index == 0:
            return list(range(len(self.shards)))
        return _permutation(len(self.shards), self.seed, pass_index)

    def member_order(self, pass_index: int, shard_index: int, n: int) -> list[int]:
        if pass_index == 0:
            return list(range(n))
        return _permutation(n, self.seed, pass_index, shard_index)

    def read_shard(self, shard: ShardInfo) -> list[bytes]:
        """The raw (still gzip-compressed) members of one tar, in tar order."""
        import fsspec

        members: list[bytes] = []
        try:
            with fsspec.open(shard.url, "rb") as f, tarfile.open(fileobj=f, mode="r|*") as tar:
                for info in tar:
                    if info.isfile() and info.name.endswith(DATA_SUFFIX):
                        members.append(tar.extractfile(info).read())  # type: ignore[union-attr]
        except (OSError, tarfile.TarError) as exc:
            raise HarnessError(f"cannot read shard {shard.url}: {exc}") from exc
        if len(members) != shard.num_sequences:
            raise HarnessError(
                f"{shard.url} holds {len(members)} sequences but manifest.jsonl says {shard.num_sequences}: "
                "the shard directory is corrupt; re-run `harness tokenize`"
            )
        return members

    def decode(self, raw: bytes, where: str) -> list[int]:
        try:
            ids = json.loads(gzip.decompress(raw))
        except (OSError, ValueError) as exc:
            raise HarnessError(f"{where}: a member is not gzip JSON ({exc})") from exc
        if not isinstance(ids, list) or len(ids) != self.seq_len:
            got = len(ids) if isinstance(ids, list) else type(ids).__name__
            raise HarnessError(
                f"{where}: a sequence holds {got} token ids, the track needs {self.seq_len} (context + 1): "
                "tokenize the subset for this track"
            )
        return ids

    def raw_from(self, start: int) -> Iterator[tuple[int, bytes, str]]:
        """(sample index, raw member, shard url) from sample `start` on, forever."""
        pass_index, offset = divmod(start, self.num_sequences)
        while True:
            for shard_index in self.shard_order(pass_index):
                shard = self.shards[shard_index]
                if offset >= shard.num_sequences:  # skip whole shards without reading them
                    offset -= shard.num_sequences
                    continue
                members = self.read_shard(shard)
                order = self.member_order(pass_index, shard_index, len(members))
                base = pass_index * self.num_sequences + self._shard_start(pass_index, shard_index)
                for position in range(offset, len(members)):
                    yield base + position, members[order[position]], shard.url
                offset = 0
            pass_index += 1

    def _shard_start(self, pass_index: int, shard_index: int) -> int:
        start = 0
        for i in self.shard_order(pass_index):
            if i == shard_index:
                return start
            start += self.shards[i].num_sequences
        raise AssertionError("shard not in order")

    def batches(
        self, start_step: int, global_batch: int, *, rank: int = 0, world: int = 1
    ) -> Iterator[list[list[int]]]:
        """This process's part of every global batch from optimizer step `start_step` on: rank r of w gets
        positions [r * B/w, (r + 1) * B/w) of each batch of B sequences, so the global batch is the same
        whatever the number of processes. Only this process's sequences are decompressed."""
        if global_batch % world:
            raise HarnessError(f"the global batch ({global_batch}) must be a multiple of the process count ({world})")
        local = global_batch // world
        lo, hi = rank * local, (rank + 1) * local
        batch: list[list[int]] = []
        for index, raw, url in self.raw_from(start_step * global_batch):
            if lo <= index % global_batch < hi:
                batch.append(self.decode(raw, url))
                if len(batch) == local:
                    yield batch
                    batch = []
