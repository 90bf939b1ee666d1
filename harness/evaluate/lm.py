"""The lm-eval model over our Transformer and tokenizer (`lm_eval --model harness --model_args checkpoint=DIR`).

Log-likelihoods are computed in length-sorted batches (long requests first, so the first batch shows the peak
memory) and only at the continuation positions: the output matrix is applied to those rows alone, which is most
of the work saved for large vocabularies. Rolling log-likelihood uses lm-eval's disjoint windows; generation is
greedy. Works on CPU and GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model

#: Sequences per forward pass when lm-eval asks for "auto".
DEFAULT_BATCH = 16


def _batch(size: int | str) -> int:
    """lm-eval's --batch_size: a number, or "auto" / "auto:N" (no memory probing here: the default size)."""
    text = str(size)
    return DEFAULT_BATCH if text.startswith("auto") else int(text)


class TokenText(str):
    """Text that arrives already tokenized (DCLM's requests, rendered as llm-foundry renders them): the model scores
    `ids` as they are instead of re-tokenizing the text, which is kept for logs."""

    ids: tuple[int, ...]

    def __new__(cls, text: str, ids: tuple[int, ...]) -> TokenText:
        obj = super().__new__(cls, text)
        obj.ids = tuple(ids)
        return obj


@register_model("harness")
class HarnessLM(TemplateLM):
    """lm-eval model. Command-line arguments: checkpoint, track, device, batch_size, max_length."""

    def __init__(
        self,
        checkpoint: str | None = None,
        track: str | None = None,
        device: str | None = None,
        batch_size: int | str = 16,
        max_length: int | str | None = None,
        **_: Any,  # lm-eval passes extra keys (e.g. max_batch_size) that do not apply here
    ) -> None:
        super().__init__()
        self.progress: Callable[[int], None] | None = None  # called with the number of requests just finished
        if checkpoint is None:
            return  # built by `from_model`
        from harness.evaluate.checkpoint import load_model, resolve_checkpoint
        from harness.tokenizer import load_tokenizer
        from harness.tracks import get_track

        info = resolve_checkpoint(checkpoint, track=get_track(track) if track else None)
        # lm-eval's CLI passes device="cuda" by default; like its hf model, fall back to the CPU without a GPU
        dev = device if device and (torch.cuda.is_available() or not device.startswith("cuda")) else None
        dev = dev or ("cuda" if torch.cuda.is_available() else "cpu")
        tokens = load_tokenizer(info.tokenizer, path=info.tokenizer_file)
        self._setup(load_model(info, dev), tokens, info.tokenizer.eot_id,
                    info.tokenizer.pad_id, int(max_length or info.shape.context), dev, _batch(batch_size))  # fmt: skip
        self.info = info

    @classmethod
    def from_model(
        cls, model: torch.nn.Module, tokenizer: Any, *, eot_id: int, pad_id: int, max_length: int,
        device: str = "cpu", batch_size: int = 16,
    ) -> HarnessLM:  # fmt: skip
        """An adapter over an already loaded model and `tokenizers.Tokenizer`."""
        lm = cls()
        lm._setup(model, tokenizer, eot_id, pad_id, max_length, device, batch_size)
        return lm

    def _setup(self, model, tokenizer, eot_id, pad_id, max_length, device, batch_size) -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self._eot_id, self._pad_id = eot_id, pad_id
        self._max_length, self._device, self.batch_size = max_length, torch.device(device), batch_size

    # --- tokenizer side -------------------------------------------------------------------------------------
    @property
    def eot_token_id(self) -> int:
        return self._eot_id

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def max_length(self) -> int:
        return self._max_length

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **_: Any) -> list[int]:
        if isinstance(string, TokenText):
            return list(string.ids)
        return self.tokenizer.encode(string, add_special_tokens=False).ids

    def tok_decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=False)

    # --- scoring --------------------------------------------------------------------------------------------
    def _logits_at(self, ids: torch.Tensor, rows: list[torch.Tensor]) -> torch.Tensor:
        """Logits of sequence i at positions rows[i] only, concatenated (the output projection skips the rest)."""
        m = self.model
        x = m.post_embed_norm(m.tok_embeddings(ids))
        for layer in m.layers:
            x = layer(x)
        batch = torch.cat([torch.full_like(r, i) for i, r in enumerate(rows)])
        return m.output(m.norm(x[batch, torch.cat(rows)])).float()

    def _score(self, items: list[tuple[list[int], list[int]]], *, share: bool = True) -> list[tuple[float, bool]]:
        """(sum log p(continuation | context), continuation is greedy) per (context ids, continuation ids); the
        continuations of a context that several items share are scored from one pass over it (shared_context)."""
        from harness.evaluate.shared_context import score_shared, shared_groups

        groups = shared_groups(items, self.max_length + 1) if share else {}
        shared = score_shared(self.model, items, groups, self._pad_id, self.device) if groups else {}
        if shared and self.progress:
            self.progress(len(shared))
        rest = [i for i in range(len(items)) if i not in shared]
        scored = dict(zip(rest, self._score_each([items[i] for i in rest]), strict=True))
        return [shared[i] if i in shared else scored[i] for i in range(len(items))]

    @torch.inference_mode()
    def _score_each(self, items: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """`_score` one sequence per item, in length-sorted batches."""
        window = self.max_length + 1
        prepared = []
        for ctx, cont in items:
            whole = (ctx + cont)[-window:]
            n_cont = min(len(cont), len(whole) - 1)
            prepared.append((whole[:-1], whole[-n_cont:], n_cont))
        order = sorted(range(len(prepared)), key=lambda i: -len(prepared[i][0]))
        out: list[tuple[float, bool]] = [(0.0, False)] * len(prepared)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = len(prepared[batch[0]][0])
            ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
            rows = []
            for j, i in enumerate(batch):
                inp, _, n_cont = prepared[i]
                ids[j, : len(inp)] = torch.tensor(inp)
                rows.append(torch.arange(len(inp) - n_cont, len(inp)))
            logp = F.log_softmax(self._logits_at(ids.to(self.device), [r.to(self.device) for r in rows]), dim=-1)
            target = torch.tensor([t for i in batch for t in prepared[i][1]], device=self.device)
            token_ll = logp.gather(1, target[:, None])[:, 0]
            token_hit = logp.argmax(-1) == target
            sizes = [prepared[i][2] for i in batch]
            for i, ll, hit in zip(batch, token_ll.split(sizes), token_hit.split(sizes), strict=True):
                out[i] = (ll.sum().item(), bool(hit.all()))
            if self.progress:
                self.progress(len(batch))
        return out

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        if requests and all(isinstance(r.args[0], TokenText) for r in requests):  # pre-tokenized: score the ids
            return self._loglikelihood_tokens([(r.args, list(r.args[0].ids), list(r.args[1].ids)) for r in requests])
        # lm-eval's own tqdm bar would fight the caller's rich display when one is attached.
        return super().loglikelihood(requests, disable_tqdm=disable_tqdm or self.progress is not None)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **_: Any) -> list[tuple[float, bool]]:
        results = self._score([(ctx, cont) for _, ctx, cont in requests])
        for (key, _, _), res in zip(requests, results, strict=True):
            if key is not None:
                self.cache_hook.add_partial("loglikelihood", key, res)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        windows, owner = [], []
        for n, req in enumerate(requests):
            (text,) = req.args
            for pair in get_rolling_token_windows(self.tok_encode(text), self.eot_token_id, self.max_length, 1):
                windows.append(make_disjoint_window(pair))
                owner.append(n)
        totals = [0.0] * len(requests)
        for n, (ll, _) in zip(owner, self._score(windows, share=False), strict=True):
            totals[n] += ll
        for req, total in zip(requests, totals, strict=True):
            self.cache_hook.add_partial("loglikelihood_rolling", (req.args[0],), total)
        return totals

    @torch.inference_mode()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        outputs = []
        for req in requests:
            context, kwargs = req.args
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(kwargs.get("max_gen_toks", 256))
            text = self._greedy(context, until, max_new)
            outputs.append(text)
            self.cache_hook.add_partial("generate_until", (context, kwargs), text)
            if self.progress:
                self.progress(1)
        return outputs

    def _greedy(self, context: str, until: list[str], max_new: int) -> str:
        ids = self.tok_encode(context)[-max(1, self.max_length - max_new) :] or [self.eot_token_id]
        new: list[int] = []
        text = ""
        for _ in range(max_new):
            window = torch.tensor([(ids + new)[-self.max_length :]], device=self.device)
            nxt = int(self._logits_at(window, [torch.tensor([window.shape[1] - 1], device=self.device)]).argmax())
            if nxt == self.eot_token_id:
                break
            new.append(nxt)
            text = self.tok_decode(new)
            if any(stop in text for stop in until):
                break
        for stop in until:
            text = text.split(stop)[0]
        return text
