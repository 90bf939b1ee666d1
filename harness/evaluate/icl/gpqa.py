"""DCLM's gpqa_data/: built, as DCLM's `eval/eval_openlm_ckpt.py` (`convert_gpqa`) builds it, from the GPQA csv
files in DCLM's password-protected `eval/gpqa/dataset.zip`: per question, the correct and three incorrect answers
in a numpy array, shuffled by one `random.Random(42)` per file, written as llm-foundry multiple-choice lines.
(The GPQA authors ask that the questions not be published in plain text, so they are built locally, never shipped.)
"""

from __future__ import annotations

import io
import json
import random
import zipfile

#: DCLM's zip password (public in DCLM's eval_openlm_ckpt.py).
PASSWORD = b"deserted-untie-orchid"
#: Output file -> the csv it is built from.
OUTPUTS = {
    "gpqa_data/gpqa_main.jsonl": "dataset/gpqa_main.csv",
    "gpqa_data/gpqa_diamond.jsonl": "dataset/gpqa_diamond.csv",
}


def convert(csv_bytes: bytes) -> bytes:
    """One GPQA csv -> DCLM's jsonl bytes (pandas' csv parsing and numpy's string array, as DCLM's code uses)."""
    import numpy as np
    import pandas as pd

    df = pd.read_csv(io.BytesIO(csv_bytes))
    rng = random.Random(42)
    lines = []
    for i in range(df.shape[0]):
        answers = ["Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]
        choices = np.array([df[a][i] for a in answers])
        order = list(range(4))
        rng.shuffle(order)
        lines.append(
            json.dumps({"query": df["Question"][i], "choices": choices[order].tolist(), "gold": order.index(0)})
        )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def build(zip_bytes: bytes) -> dict[str, bytes]:
    """Every output file's bytes from DCLM's dataset.zip."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as z:
        z.setpassword(PASSWORD)
        return {out: convert(z.read(member)) for out, member in OUTPUTS.items()}
