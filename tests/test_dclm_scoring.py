"""DCLM's scoring (llm-foundry 0.9.0's metrics): per-token multiple choice, answer extraction and normalisation for
generation, wired through the lm-eval tasks the harness builds for DCLM's tasks."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from harness.evaluate.icl.score import best_choice, extract_answer, generation_correct, normalize_answer
from harness.resources import asset_path

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dclm-eval"
STOPS = ("\n\n", "Q:", "Q: ")


def test_best_choice_is_per_token_and_first_on_ties():
    assert best_choice([-6.0, -4.0], [3, 1]) == 0  # -2 per token beats -4
    assert best_choice([-2.0, -2.0, -1.0], [2, 2, 1]) == 0


def test_normalisation_and_extraction_as_llm_foundry():
    assert normalize_answer("The  Allium_cepa‘s, an ONION!") == "allium cepa s onion"
    assert extract_answer("so 9 * 2 = 18 #### 18\n\nQ: next question #### 5", STOPS, " #### ") == "18"
    assert extract_answer("x #### 7 Q: y", STOPS, " #### ") == "7 "
    assert generation_correct(" onion soup", ["Onion"]) and not generation_correct(" an apple", ["Onion"])
    assert generation_correct("step #### 18.\n\nQ:", ["18"], stop_sequences=STOPS, cot_delimiter=" #### ")
    assert not generation_correct(" Onion", ["onion"], normalize=False)


@pytest.mark.skipif(not (REF / "local_data").is_dir(), reason=f"DCLM reference folder {REF} is absent")
@pytest.mark.parametrize(
    ("label", "output", "correct"),
    [
        ("gsm8k_cot", "16 - 3 - 4 = 9 eggs, 9 * 2 = 18 #### 18\n\nQ: more", 1.0),
        ("gsm8k_cot", "16 - 3 - 4 = 9 eggs #### 9", 0.0),
        ("triviaqa_sm_sub", " Allium cepa, of course", 1.0),
        ("triviaqa_sm_sub", " Garlic", 0.0),
    ],
)
def test_generation_tasks_score_dclms_answers(label, output, correct):
    from harness.evaluate.icl.task import build_icl_tasks

    tok = Tokenizer.from_file(str(asset_path("sandbox-bpe-2k.json")))
    (built,) = build_icl_tasks(label, suite_task=label, metric="exact_match", shots=3, data_root=REF, tokenizer=tok,
                               first=1)  # fmt: skip
    built.task.build_all_requests()
    (inst,) = built.task.instances
    assert inst.request_type == "generate_until" and inst.args[1]["until"] == list(built.task.rendered.stop_sequences)
    assert built.task.process_results(inst.doc, [output]) == {"exact_match": correct}
