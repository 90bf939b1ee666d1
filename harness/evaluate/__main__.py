"""`harness-lm-eval ARGS...` (or `python -m harness.evaluate ARGS...`): lm-eval's own command line, with its
exact arguments, after registering the `harness` model.

lm-eval 0.4.x finds models only in its own registry: `get_model` imports `lm_eval.models` and looks the name up;
it reads no entry points and imports no plugins, so after `pip install harness` a bare `lm_eval --model harness`
cannot know our model. This console script is lm-eval's CLI with the import done first, e.g.
`harness-lm-eval --model harness --model_args checkpoint=runs/x --tasks hellaswag`.
"""

from __future__ import annotations


def main() -> None:
    from lm_eval.__main__ import cli_evaluate

    import harness.evaluate.lm  # noqa: F401  (registers "harness" with lm-eval)

    cli_evaluate()


if __name__ == "__main__":
    main()
