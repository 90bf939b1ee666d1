"""Exporting a checkpoint to the formats other tools load: `hf` (a Hugging Face model folder that
`transformers.AutoModelForCausalLM.from_pretrained(..., trust_remote_code=True)` loads with equal logits)."""
