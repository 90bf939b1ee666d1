"""Experiments: a TOML file (experiments/*.toml) names a base subset, factors and a track; `harness sweep run` trains
every cell as an ordinary entry, `harness sweep report` tables and plots them, `harness scaling fit` fits laws.

spec.py        the experiment file -> frozen `Experiment`, cells of its design
transforms.py  subset transformations: filter strength, size fraction, duplication rate (exact, seeded)
sweep.py       building the cells' subsets and running them (parallel local processes or a Slurm job array)
report.py      the results table (Markdown, CSV, JSON) and plots with noise bands
"""
