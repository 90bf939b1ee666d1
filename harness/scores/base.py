"""What a scorer is: a named, configured function from a batch of documents to score columns.

A scorer is a frozen dataclass (its fields are its configuration, recorded in the scores manifest), pickled into
datatrove's workers, where `setup()` loads whatever it needs (a model) once per task. `score(docs, rank)`
returns one list per column of `fields()`, in document order. Column names start with the scorer's name so that
scorers never collide (see the schema in `harness.scores.run`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pyarrow as pa
    from datatrove.data import Document


class Scorer(ABC):
    """Base of every scorer; subclasses are frozen dataclasses."""

    #: Registry name (`--scorer NAME`).
    name: ClassVar[str]
    #: Whether the scorer needs a whole-pool stage before the per-shard pass (dedup's clustering).
    global_stage: ClassVar[bool] = False

    @abstractmethod
    def fields(self) -> list[pa.Field]:
        """The Parquet columns this scorer writes (names, types, nullability), with a description in metadata."""

    def preload(self) -> None:  # noqa: B027 - optional hook
        """Import heavy libraries in the parent, so that forked local workers inherit them instead of each
        importing them again (spaCy takes seconds)."""

    def setup(self, work_dir: Path) -> None:  # noqa: B027 - optional hook
        """Load models once per task, in the worker process."""

    @abstractmethod
    def score(self, docs: list[Document], rank: int) -> dict[str, list[Any]]:
        """One value per document for each of `fields()`; `rank` is the input shard's number."""

    def config(self) -> dict[str, Any]:
        """The configuration recorded in the manifest (fields, plus the sha256 of any model file)."""
        return {"name": self.name, **asdict(self)}  # type: ignore[call-overload]


def field(name: str, type_: pa.DataType, doc: str, nullable: bool = False) -> pa.Field:
    import pyarrow as pa

    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})
