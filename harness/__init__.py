"""harness: a benchmark for language-model training data in the style of DataComp-LM."""

__version__ = "0.1.0"
