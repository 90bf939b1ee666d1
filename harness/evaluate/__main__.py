"""`python -m harness.evaluate ARGS...`: lm-eval's own command line with the `harness` model registered.

lm-eval 0.4.13 has no plugin discovery for models (its registry only knows what has been imported), so
`lm_eval --model harness` alone cannot find ours; this runs the same CLI after importing it, e.g.
`python -m harness.evaluate --model harness --model_args checkpoint=runs/x --tasks hellaswag`.
"""

from __future__ import annotations

import harness.evaluate.lm  # noqa: F401  (registers "harness" with lm-eval)

if __name__ == "__main__":
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()
