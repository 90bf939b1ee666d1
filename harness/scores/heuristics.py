"""`heuristics`: datatrove's Gopher (quality + repetition), C4 and FineWeb quality filters, pass/fail and reason.

Each filter sees its own copy of the document (C4's filter edits text in place), with datatrove's default
thresholds. The four filters share one word tokenizer (see `_shared_tokenizer`), so a document is tokenized once,
not once per filter (`harness.scores.words`). Columns: `<filter>_pass` per filter, `heuristics_pass` (all of them) and `heuristics_reason`
("<filter>:<datatrove's reason>" of the first filter that failed, null when all passed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from harness.config import doc
from harness.scores.base import Scorer, field

if TYPE_CHECKING:
    import pyarrow as pa
    from datatrove.data import Document

FILTERS = ("gopher", "gopher_repetition", "c4", "fineweb")


@dataclass(frozen=True, kw_only=True)
class HeuristicsScorer(Scorer):
    """Rule-based quality filters from datatrove, run as per-document predicates."""

    name: ClassVar[str] = "heuristics"
    filters: tuple[str, ...] = doc(f"Which filters, of {', '.join(FILTERS)}.", default=FILTERS)
    language: str = doc("Language of datatrove's word tokenizer (English: spaCy's blank tokenizer).", default="en")

    def __post_init__(self) -> None:
        unknown = [f for f in self.filters if f not in FILTERS]
        if unknown or not self.filters:
            raise ValueError(f"heuristics filters must be among {', '.join(FILTERS)}, got {list(self.filters)}")

    def fields(self) -> list[pa.Field]:
        import pyarrow as pa

        out = [field(f"{f}_pass", pa.bool_(), f"passes datatrove's {f} filter") for f in self.filters]
        out.append(field("heuristics_pass", pa.bool_(), "passes every filter"))
        out.append(field("heuristics_reason", pa.string(), "filter:reason of the first failure", nullable=True))
        return out

    def preload(self) -> None:
        from harness.scores.words import preload

        preload(self.language)

    def setup(self, work_dir: Any) -> None:
        object.__setattr__(self, "_blocks", _build(self.filters, self.language))

    def score(self, docs: list[Document], rank: int) -> dict[str, list[Any]]:
        from datatrove.data import Document

        blocks = getattr(self, "_blocks", None) or _build(self.filters, self.language)
        out: dict[str, list[Any]] = {f"{f}_pass": [] for f in self.filters}
        out["heuristics_pass"], out["heuristics_reason"] = [], []
        for d in docs:
            reason = None
            for key, block in blocks.items():
                verdict = block.filter(Document(text=d.text, id=d.id, metadata={}))
                ok, why = (verdict, "") if isinstance(verdict, bool) else (bool(verdict[0]), verdict[1])
                out[f"{key}_pass"].append(ok)
                if not ok and reason is None:
                    reason = f"{key}:{why or 'rejected'}"
            out["heuristics_pass"].append(reason is None)
            out["heuristics_reason"].append(reason)
        return out


def _build(filters: tuple[str, ...], language: str) -> dict[str, Any]:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    from harness.scores.words import shared_tokenizer

    tok = shared_tokenizer(language)

    makers = {
        "gopher": lambda: GopherQualityFilter(language=tok),
        "gopher_repetition": lambda: GopherRepetitionFilter(language=tok),
        "c4": lambda: C4QualityFilter(language=tok),
        "fineweb": lambda: FineWebQualityFilter(language=tok),
    }
    return {f: makers[f]() for f in filters}
