"""The static leaderboard website: built from result records (build.py), with per-track charts (charts.py),
CSV/JSON downloads (downloads.py) and an S3 publisher (publish.py). The column registry is columns.py.

Import the functions from their modules (`from harness.leaderboard.build import build_from_store`); this
package's __init__ stays empty of heavy imports so the CLI starts fast.
"""
