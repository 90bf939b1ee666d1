"""What the commands show: rich progress bars, summaries and report tables. The library imports only
`display.progress` (which imports nothing of the harness) for the bars it shows when the caller gives none."""
