"""The intent model: a small BERT encoder with an intent head and a span-tagging head.

:class:`IntentTagger` is the network (transformers + torch). :class:`IntentParser` wraps a
trained artifact: it tokenises a message, runs the network once, decodes the BIO tags into
spans and hands them to :func:`ml.intent.normalise.normalise`, which returns the canonical
parse output of DESIGN.md.

An artifact directory holds ``manifest.json`` and ``hf/`` (``config.json``,
``model.safetensors``, the tokenizer files), everything loaded with ``local_files_only``.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel, BertTokenizer

from ml.intent.labels import BIO_LABELS, INTENTS, Intent, Tag, split_label
from ml.intent.normalise import TaggedSpan, normalise

ARTIFACTS_DIR = Path(__file__).resolve().parents[1] / "artifacts" / "intent"
"""Where the committed intent artifacts live, one folder per version."""
MANIFEST = "manifest.json"
HF_DIR = "hf"
MAX_TOKENS = 128
"""Messages are cut to this many tokens; chat lines are far shorter."""


class IntentTagger(BertPreTrainedModel):  # type: ignore[no-untyped-call]
    """BERT encoder, a sequence head over the mean of its token states, and a token head.

    The config carries ``intent_labels`` and ``tag_labels``, the output orders of the heads.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.intent_head = nn.Linear(config.hidden_size, len(config.intent_labels))
        self.tag_head = nn.Linear(config.hidden_size, len(config.tag_labels))
        self.post_init()  # type: ignore[no-untyped-call]

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Intent logits ``(batch, intents)`` and tag logits ``(batch, tokens, tags)``."""
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        states = self.dropout(states)
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.intent_head(pooled), self.tag_head(states)


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the network says about one message, before normalisation."""

    intent: Intent
    intent_confidence: float
    spans: tuple[TaggedSpan, ...]


def latest_artifact(root: Path = ARTIFACTS_DIR) -> Path:
    """Newest artifact (by its timestamped name) under ``root``.

    For the command line and the benchmark; the service pins a version instead.
    """
    found = sorted(p.parent for p in root.glob(f"*/{MANIFEST}"))
    if not found:
        raise FileNotFoundError(f"no intent artifact under {root}")
    return found[-1]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ArtifactMismatch(RuntimeError):
    """An artifact file does not match the checksum its manifest records."""


class IntentParser:
    """Chat line → canonical parse output.

    Build with :meth:`load`; :meth:`parse` and :meth:`parse_batch` are thread-compatible
    (no state changes after loading) and run under ``torch.inference_mode``.
    """

    def __init__(
        self,
        model: IntentTagger,
        tokenizer: BertTokenizer,
        *,
        version: str,
        threshold: float,
        manifest: dict[str, Any] | None = None,
        one_line_at_a_time: bool = False,
    ) -> None:
        model.eval()  # type: ignore[no-untyped-call]
        # int8 with dynamic activation scales: a scale is taken over the whole input, padding
        # and the other lines included, so a batch would read a line otherwise than the
        # service (one line per call) does; metrics must be what is served
        self.one_line_at_a_time = one_line_at_a_time
        self.model = model
        self.tokenizer = tokenizer
        self.threshold = threshold
        self.manifest = manifest or {}
        self._version = version
        self._tags = [split_label(label) for label in model.config.tag_labels]
        self._intents = [Intent(i) for i in model.config.intent_labels]

    @property
    def version(self) -> str:
        """Artifact version, ``<UTC timestamp>-<git sha>``."""
        return self._version

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        num_threads: int | None = None,
        verify: bool = True,
        quantize: bool = True,
    ) -> IntentParser:
        """Load an artifact directory written by :func:`ml.intent.train.train`.

        Parameters
        ----------
        directory
            The artifact (``manifest.json`` and ``hf/``).
        num_threads
            When given, ``torch.set_num_threads(num_threads)`` (process-wide).
        verify
            Check every file against the SHA-256 in the manifest first.
        quantize
            Run the linear layers in int8 (:func:`quantized`), as the manifest's metrics were
            measured; ``False`` keeps float32.

        Raises
        ------
        ArtifactMismatch
            When ``verify`` and a file differs from its manifest checksum.
        """
        root = Path(directory)
        manifest = json.loads((root / MANIFEST).read_text())
        if verify:
            for name, expected in manifest["files"].items():
                if sha256_file(root / name) != expected:
                    raise ArtifactMismatch(f"{root / name} does not match its manifest sha256")
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        hf = root / HF_DIR
        model = IntentTagger.from_pretrained(hf, local_files_only=True, dtype=torch.float32)
        tokenizer = BertTokenizer.from_pretrained(hf, local_files_only=True)
        return cls(
            quantized(model) if quantize else model,
            tokenizer,
            version=manifest["version"],
            threshold=manifest["confidence_threshold"],
            manifest=manifest,
            one_line_at_a_time=quantize,
        )

    def parse(self, text: str, as_of: date) -> dict[str, Any]:
        """Canonical parse output of one message sent on ``as_of``."""
        return self.parse_batch([(text, as_of)])[0]

    def parse_batch(self, messages: Sequence[tuple[str, date]]) -> list[dict[str, Any]]:
        """Canonical parse outputs of ``(text, as_of)`` pairs, one network call."""
        predictions = self.predict([text for text, _ in messages])
        return [
            normalise(p.intent, p.intent_confidence, p.spans, as_of, self.threshold, text)
            for p, (text, as_of) in zip(predictions, messages, strict=True)
        ]

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Intents and tagged spans of messages, before normalisation."""
        if self.one_line_at_a_time and len(texts) > 1:
            return [p for text in texts for p in self._predict([text])]
        return self._predict(texts)

    def _predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        encoded = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=MAX_TOKENS,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        with torch.inference_mode():
            intent_logits, tag_logits = self.model(encoded["input_ids"], encoded["attention_mask"])
            intent_probs = intent_logits.float().softmax(-1)
            tag_probs = tag_logits.float().softmax(-1)
        return [
            Prediction(
                self._intents[int(intent_probs[i].argmax())],
                float(intent_probs[i].max()),
                self._spans(
                    texts[i], encoded.word_ids(i), encoded["offset_mapping"][i], tag_probs[i]
                ),
            )
            for i in range(len(texts))
        ]

    def _spans(
        self,
        text: str,
        word_ids: list[int | None],
        offsets: torch.Tensor,
        probs: torch.Tensor,
    ) -> tuple[TaggedSpan, ...]:
        """Decode BIO labels into spans.

        Inside one word, a piece left untagged between or beside pieces of a single tag takes
        that tag (a typo split into pieces stays one span). A span's confidence is the lowest
        probability of its tag at the first piece of each of its words.
        """
        best = probs.argmax(-1).tolist()
        # Probability of each tag regardless of B/I: columns 1+2k and 2+2k of the label set.
        tag_probs = (probs[:, 1::2] + probs[:, 2::2]).tolist()
        labels = [self._tags[b] for b in best]
        pieces: dict[int, list[int]] = {}
        for i, word in enumerate(word_ids):
            if word is not None:
                pieces.setdefault(word, []).append(i)
        for indices in pieces.values():
            tags = {labels[i][1] for i in indices} - {None}
            if len(tags) == 1:
                (only,) = tags
                labels = [("I", only) if i in indices and tag is None else (prefix, tag)
                          for i, (prefix, tag) in enumerate(labels)]  # fmt: skip
        spans: list[TaggedSpan] = []
        current: tuple[Tag, int, int, float] | None = None
        previous_word: int | None = None
        for i, word in enumerate(word_ids):
            if word is None:
                continue
            prefix, tag = labels[i]
            start, end = (int(x) for x in offsets[i])
            new_word = word != previous_word
            previous_word = word
            if current is not None and tag is current[0] and (prefix == "I" or not new_word):
                confidence = current[3]
                if new_word:
                    confidence = min(confidence, tag_probs[i][_TAG_INDEX[tag]])
                current = (tag, current[1], end, confidence)
                continue
            if current is not None:
                spans.append(_span(text, current))
            current = None if tag is None else (tag, start, end, tag_probs[i][_TAG_INDEX[tag]])
        if current is not None:
            spans.append(_span(text, current))
        return tuple(spans)


_TAG_INDEX = {tag: i for i, tag in enumerate(Tag)}


def _span(text: str, current: tuple[Tag, int, int, float]) -> TaggedSpan:
    tag, start, end, confidence = current
    return TaggedSpan(tag, text[start:end], start, confidence)


def quantized(model: IntentTagger) -> IntentTagger:
    """A copy of ``model`` whose linear layers run in int8 with dynamic activation scales.

    About three times faster on CPU than float32 for these short inputs, at the same
    accuracy within noise (both are measured when training).
    """
    with warnings.catch_warnings():
        # torch.ao's dynamic quantisation is deprecated in favour of the separate torchao
        # package, but still ships with the pinned torch and needs nothing more.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantiz", category=UserWarning)
        copy: IntentTagger = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {nn.Linear}, dtype=torch.qint8
        )
    return copy


def new_config(base: BertConfig, num_layers: int, vocab_size: int) -> BertConfig:
    """Config of an :class:`IntentTagger` cut from a pretrained BERT config."""
    config = BertConfig.from_dict(base.to_dict())
    config.num_hidden_layers = num_layers
    config.vocab_size = vocab_size
    config.intent_labels = [str(i) for i in INTENTS]
    config.tag_labels = list(BIO_LABELS)
    config.architectures = ["IntentTagger"]
    return config
