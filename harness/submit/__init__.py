"""One submission: validate -> tokenize+shuffle -> train -> evaluate -> record (pipeline.py orchestrates)."""
