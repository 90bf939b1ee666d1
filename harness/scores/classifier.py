"""`fasttext`: DCLM's model-based quality filter. Training (`train_classifier`) and scoring (`FastTextScorer`).

DCLM trains fastText on positives (OpenHermes-2.5 + ELI5) against negatives (a RefinedWeb sample), labelled
`__label__hq` and `__label__cc`, with `wordNgrams=2` and fastText's defaults otherwise (lr 0.1, dim 100, ws 5,
epoch 5, minCount 1; mlfoundations/dclm baselines/train_fasttext_classifier.py and its README). A document is
one line: its lines joined by spaces. The score is P(`__label__hq`), as DCLM's `classify_fasttext_hq_prob`
computes it; DCLM's released `fasttext_oh_eli5.bin` loads the same way.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.config import doc
from harness.errors import HarnessError, UsageError
from harness.io.files import file_sha256
from harness.scores.base import Scorer, field

if TYPE_CHECKING:
    import pyarrow as pa
    from datatrove.data import Document

POSITIVE, NEGATIVE = "__label__hq", "__label__cc"


@dataclass(frozen=True, kw_only=True)
class FastTextRecipe:
    """fastText's `train_supervised` hyper-parameters; the defaults are DCLM's OH-2.5+ELI5 classifier."""

    lr: float = doc("Learning rate.", default=0.1)
    dim: int = doc("Word vector size.", default=100)
    ws: int = doc("Context window.", default=5)
    epoch: int = doc("Epochs.", default=5)
    minCount: int = doc("Minimal word occurrences.", default=1)
    wordNgrams: int = doc("Word n-grams as features (2: unigrams and bigrams).", default=2)
    seed: int = doc("Seed of the shuffle of the training lines (and fastText's own seed).", default=42)
    thread: int = doc("fastText threads; 1 makes training deterministic.", default=1)

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.dim < 1 or self.epoch < 1 or self.wordNgrams < 1 or self.thread < 1:
            raise ValueError("fastText lr, dim, epoch, wordNgrams and thread must be positive")


def one_line(text: str) -> str:
    """DCLM's preprocessing: strip, then join the lines with spaces (fastText reads one example per line)."""
    return " ".join(text.strip().splitlines())


def read_texts(path: str | Path, text_field: str = "text") -> Iterator[str]:
    """Texts of a JSONL file (.gz/.zst too; `{"text"}` lines) or, for any other name, one document per line."""
    from harness.io.files import is_jsonl, open_binary

    path = str(path)
    if not Path(path).is_file():
        raise UsageError(f"{path}: no such file")
    with open_binary(path) as fh:
        for n, raw in enumerate(fh, 1):
            line = raw.decode("utf-8").strip()
            if not line:
                continue
            if not is_jsonl(path):
                yield line
                continue
            try:
                yield json.loads(line)[text_field]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise UsageError(f"{path}:{n}: expected a JSON object with a {text_field!r} field ({exc})") from exc


def train_classifier(
    positives: Iterable[str], negatives: Iterable[str], out: Path, recipe: FastTextRecipe = FastTextRecipe()
) -> dict[str, Any]:
    """Train and save a fastText classifier; returns its card (counts, recipe, training precision, sha256)."""
    import fasttext

    lines = [f"{POSITIVE} {one_line(t)}" for t in positives] + [f"{NEGATIVE} {one_line(t)}" for t in negatives]
    n_pos = sum(1 for line in lines if line.startswith(POSITIVE))
    if n_pos == 0 or n_pos == len(lines):
        raise UsageError(f"a classifier needs both classes: {n_pos} positive and {len(lines) - n_pos} negative texts")
    random.Random(recipe.seed).shuffle(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    train_file = out.with_name(out.name + ".train.txt")
    train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    params = {k: v for k, v in asdict(recipe).items()}
    model = fasttext.train_supervised(input=str(train_file), verbose=0, **params)
    n, precision, _ = model.test(str(train_file))
    train_file.unlink()
    tmp = out.with_name(out.name + ".tmp")
    model.save_model(str(tmp))
    tmp.replace(out)
    card = {
        "positives": n_pos,
        "negatives": len(lines) - n_pos,
        "recipe": asdict(recipe),
        "train_precision": precision,
        "train_examples": n,
        "sha256": file_sha256(out),
    }
    Path(str(out) + ".json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def load_fasttext(path: str | Path) -> Any:
    import fasttext

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"fastText model {path} does not exist; train one with `harness classifier train`")
    try:
        return fasttext.load_model(str(path))
    except ValueError as exc:
        raise HarnessError(f"{path}: not a fastText model ({exc})") from exc


def hq_probability(model: Any, texts: list[str]) -> list[float]:
    """P(__label__hq) per text (DCLM: the top label's probability, or one minus it when the top is not hq)."""
    labels, probs = model.predict([one_line(t) for t in texts], k=1)
    return [
        float(min(1.0, p[0])) if lab[0] == POSITIVE else float(max(0.0, 1.0 - p[0]))
        for lab, p in zip(labels, probs, strict=True)
    ]


@dataclass(frozen=True, kw_only=True)
class FastTextScorer(Scorer):
    """Probability of the positive class under a fastText model (ours, or DCLM's released one)."""

    name: ClassVar[str] = "fasttext"
    model: str = doc("Path of the fastText .bin model.")

    def __post_init__(self) -> None:
        if not self.model:
            raise UsageError("the fasttext scorer needs a model: --fasttext-model FILE")

    def fields(self) -> list[pa.Field]:
        import pyarrow as pa

        return [field("fasttext_hq_prob", pa.float64(), "P(__label__hq) under the fastText model")]

    def setup(self, work_dir: Any) -> None:
        object.__setattr__(self, "_model", load_fasttext(self.model))

    def score(self, docs: list[Document], rank: int) -> dict[str, list[Any]]:
        model = getattr(self, "_model", None) or load_fasttext(self.model)
        return {"fasttext_hq_prob": hq_probability(model, [d.text for d in docs])}

    def config(self) -> dict[str, Any]:
        model = Path(self.model)
        labels = list(load_fasttext(model).get_labels())
        if POSITIVE not in labels:
            raise HarnessError(f"{model}: its labels are {labels}; DCLM's classifiers have {POSITIVE} and {NEGATIVE}")
        return {"name": self.name, "model": str(model.resolve()), "model_sha256": file_sha256(model)}
