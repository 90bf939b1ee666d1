"""The model code that `harness export --format hf` copies into the exported folder (loaded there with
`trust_remote_code=True`). Self-contained: it imports torch and transformers, never the harness."""
