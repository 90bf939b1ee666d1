"""One word tokenizer shared by the datatrove blocks a scorer runs (quality filters, MinHash shingles).

Same tokens and sentence spans as datatrove's English `SpaCyTokenizer` (spaCy's blank pipeline with a
sentencizer; tested equal), with two changes for throughput: the last texts' results are memoized (the filters
tokenize the same document in turn), and spaCy's vocabulary is kept between documents instead of being rebuilt
inside a memory zone per call (renewed every `RENEW` documents, so memory stays bounded). For languages that
datatrove does not tokenize with spaCy, its own tokenizer is used unchanged.
"""

from __future__ import annotations

from typing import Any

from datatrove.utils.word_tokenizers import WordTokenizer, load_word_tokenizer, strip_strings

RENEW = 20_000
MEMO = 256


class SharedTokenizer(WordTokenizer):
    """A datatrove `WordTokenizer`: pass it as a block's `language` and the block tokenizes through it."""

    def __init__(self, language: str) -> None:
        super().__init__(language)
        self.memo: dict[str, Any] = {}
        self.calls = 0
        self.nlp: Any = None
        self.inner: Any = None

    def __getstate__(self) -> dict[str, Any]:  # workers rebuild spaCy; nothing heavy travels
        return {"language": self.language, "memo": {}, "calls": 0, "nlp": None, "inner": None}

    def _doc(self, text: str) -> Any:
        if self.inner is None:
            self.inner = load_word_tokenizer(self.language)
        if type(self.inner).__name__ != "SpaCyTokenizer":
            return None
        if text not in self.memo:
            if self.nlp is None or self.calls % RENEW == 0:
                import spacy

                self.nlp = spacy.blank(self.language)
                self.nlp.add_pipe("sentencizer")
            self.calls += 1
            self.nlp.max_length = len(text) + 10
            self.memo[text] = self.nlp(text)
            if len(self.memo) > MEMO:
                self.memo.pop(next(iter(self.memo)))
        return self.memo[text]

    def word_tokenize(self, text: str) -> list[str]:
        doc = self._doc(text)
        return self.inner.word_tokenize(text) if doc is None else strip_strings([t.text for t in doc])

    def sent_tokenize(self, text: str) -> list[str]:
        doc = self._doc(text)
        return self.inner.sent_tokenize(text) if doc is None else strip_strings([s.text for s in doc.sents])

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        doc = self._doc(text)
        return self.inner.span_tokenize(text) if doc is None else [(s.start_char, s.end_char) for s in doc.sents]


def shared_tokenizer(language: str) -> SharedTokenizer:
    return SharedTokenizer(language)


def preload(language: str) -> None:
    """Import spaCy and datatrove's tokenizer module now (forked workers then share them)."""
    if type(load_word_tokenizer(language)).__name__ == "SpaCyTokenizer":
        import spacy  # noqa: F401
