"""Evaluation: the lm-eval adapter over our model, suites as data, DCLM's scoring and versioned aggregates.

Importing this package is cheap; torch and lm_eval load only inside the functions that need them.
Entry points: `harness.evaluate.run.evaluate_checkpoint` (the pipeline's API), `harness.evaluate.suites.get_suite`,
`harness.evaluate.aggregate.compute_aggregates` and the lm-eval model `harness.evaluate.lm.HarnessLM`.
"""
