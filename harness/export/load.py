"""Loading an exported folder with transformers (the check after `harness export`, and the tests)."""

from __future__ import annotations

import os
from typing import Any

from harness.errors import HarnessError


def load_hf_model(folder: str | os.PathLike[str], *, device: str = "cpu") -> Any:
    """`AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)` in float32, in eval mode."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    major_minor = tuple(int(p) for p in transformers.__version__.split(".")[:2])
    dtype_key = "dtype" if major_minor >= (4, 56) else "torch_dtype"  # renamed in transformers 4.56
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), trust_remote_code=True, **{dtype_key: torch.float32})
    except (OSError, ValueError) as exc:
        raise HarnessError(f"transformers cannot load {folder}: {exc}") from exc
    return model.to(device).eval()


def load_hf_tokenizer(folder: str | os.PathLike[str]) -> Any:
    """`AutoTokenizer.from_pretrained(folder, trust_remote_code=True)` (transformers 5 reads config.json first)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=True)
