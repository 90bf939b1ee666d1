"""Requests per second of the harness lm-eval model vs lm-eval's own `hf` model, on the sandbox suite, on CPU.

Both score the same loglikelihood requests (the sandbox suite's fact cloze, next-sentence and last-word tasks)
with models of the same size and shape and random weights: ours (the track's open_lm decoder) and a transformers
Llama config with the same width, depth, heads, SwiGLU width, vocabulary and context. Throughput is compared, not
accuracy. Usage: python benchmarks/eval_bench.py [--track nano] [--limit 200] [--batch-size 32] [--eval-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import time

#: Issue 27's target: requests per second against lm-eval's `hf` model on the same requests.
TARGET = 1.5


def _requests(eval_dir: str | None, limit: int) -> list:
    from harness.evaluate.data import suite_data_root
    from harness.evaluate.suites import get_suite
    from harness.evaluate.tasks import build_tasks

    suite = get_suite("sandbox")
    root = suite_data_root(suite, None, eval_dir)
    instances = []
    for name in ("fact_cloze", "next_sentence", "last_word"):
        (built,) = build_tasks(suite.task(name), data_root=root, fewshot_seed=1234)
        built.task.build_all_requests(limit=limit, rank=0, world_size=1)
        instances += built.task.instances
    return instances


def _hf_lm(track, tokenizer, batch_size: int):
    from lm_eval.models.huggingface import HFLM
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    m = track.model
    config = LlamaConfig(
        vocab_size=m.vocab_size, hidden_size=m.d_model, intermediate_size=m.ffn_hidden,
        num_hidden_layers=m.n_layers, num_attention_heads=m.n_heads, num_key_value_heads=m.n_heads,
        max_position_embeddings=m.context, tie_word_embeddings=False,
        bos_token_id=track.tokenizer.eot_id, eos_token_id=track.tokenizer.eot_id,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>", pad_token="<|pad|>")
    return HFLM(pretrained=model, tokenizer=hf_tok, batch_size=batch_size, max_length=m.context, device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="nano")
    parser.add_argument("--limit", type=int, default=200, help="examples per task")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-dir", help="sandbox eval folder (default: the sandbox pool's, generated if needed)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per model; the best is reported")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")

    import torch

    from harness.evaluate.lm import HarnessLM
    from harness.model import build_model
    from harness.tokenizer import load_tokenizer
    from harness.tracks import get_track

    track = get_track(args.track)
    torch.manual_seed(0)
    tokenizer = load_tokenizer(track.tokenizer)
    ours = HarnessLM.from_model(build_model(track), tokenizer, eot_id=track.tokenizer.eot_id,
                                pad_id=track.tokenizer.pad_id, max_length=track.model.context,
                                batch_size=args.batch_size)  # fmt: skip
    hf = _hf_lm(track, tokenizer, args.batch_size)
    requests = _requests(args.eval_dir, args.limit)
    print(f"{len(requests)} loglikelihood requests, track {track.name}, {torch.get_num_threads()} threads")
    rates = {}
    for label, lm in (("harness", ours), ("hf (lm-eval)", hf)):
        lm.loglikelihood(requests[:64], disable_tqdm=True)  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            lm.loglikelihood(requests, disable_tqdm=True)
            best = min(best, time.perf_counter() - start)
        rates[label] = len(requests) / best
        print(f"{label:>14}: {rates[label]:8.1f} requests/s ({best:.2f} s)")
    ratio = rates["harness"] / rates["hf (lm-eval)"]
    print(f"target >= {TARGET}x lm-eval's hf model: {'met' if ratio >= TARGET else 'missed'} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
