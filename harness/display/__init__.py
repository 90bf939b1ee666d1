"""What the commands show: rich progress bars, summaries and report tables. The library never imports it."""
