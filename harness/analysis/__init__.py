"""Statistics over records: bootstrap intervals, replicate spread, compare."""
