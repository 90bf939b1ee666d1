"""open_lm as a training backend: DCLM's exact launch, its log and checkpoints mapped to ours."""
