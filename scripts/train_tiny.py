"""Train the ``tiny`` checkpoint to answer the narrow task in ``minicpmv_app/tiny_task.py``.

Starts from the random tiny build (``minicpmv_app/tiny.py``), trains on pictures drawn on the fly, prints
held-out accuracy, and writes the checkpoint that ``--model tiny`` loads (``minicpmv_app/tiny_model/``).
Fixed seeds; on 2 CPU cores it takes about 13 minutes.

    python scripts/train_tiny.py                      # train, evaluate, save
    python scripts/train_tiny.py --evaluate-only      # accuracy of the committed checkpoint
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minicpmv_app.backends.native import build_inputs  # noqa: E402
from minicpmv_app.media.video import Video  # noqa: E402
from minicpmv_app.messages import Conversation, Message  # noqa: E402
from minicpmv_app.tiny import TRAINED_TINY, build_tiny_checkpoint  # noqa: E402
from minicpmv_app.tiny_task import SHAPES, answer_word, sample  # noqa: E402

KINDS = {"colour": 0.15, "shape": 0.35, "two_images": 0.4, "video": 0.1}
GOALS = {"colour": 0.95, "shape": 0.90, "two_images": 0.85, "video": 0.90}
TRAIN_SEED, EVAL_SEED = 1, 2024


def conversation(s, with_answer: bool) -> Conversation:
    media = [Video(frames=s.frames, fps=1.0, duration=float(len(s.frames)))] if s.frames else list(s.images)
    messages = [Message("user", [*media, s.question])]
    if with_answer:
        messages.append(Message("assistant", [s.answer]))
    return Conversation(messages)


def training_batch(processor, samples):
    inputs = build_inputs(processor, [conversation(s, True) for s in samples], add_generation_prompt=False)
    tokenizer = processor.tokenizer
    start_id = tokenizer.convert_tokens_to_ids("<|im_start|>")
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    header = len(tokenizer("assistant\n", add_special_tokens=False)["input_ids"])
    labels = torch.full_like(inputs["input_ids"], -100)
    for row, ids in enumerate(inputs["input_ids"].tolist()):
        begin = len(ids) - 1 - ids[::-1].index(start_id) + 1 + header  # the answer, after "<|im_start|>assistant\n"
        end = len(ids) - 1 - ids[::-1].index(end_id)  # its <|im_end|>, which teaches the model to stop
        labels[row, begin : end + 1] = inputs["input_ids"][row, begin : end + 1]
    inputs["labels"] = labels
    return inputs


def evaluate(model, processor, per_kind: int = 200, seed: int = EVAL_SEED) -> dict:
    rng = random.Random(seed)
    model.eval()
    scores = {}
    for kind in KINDS:
        correct = 0
        for _ in range(per_kind):
            s = sample(kind, rng)
            inputs = build_inputs(processor, [conversation(s, False)])
            with torch.inference_mode():
                output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
            text = processor.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            correct += answer_word(text) == s.answer
        scores[kind] = correct / per_kind
    model.train()
    return scores


class ShapeProbe(torch.nn.Module):
    """Auxiliary head used only while training: each image's pooled visual tokens -> its shape.

    The answer loss alone reaches the vision tower only through the language model and, at this size, settles
    on colour; this direct signal teaches the tower to see outlines. The head is thrown away afterwards.
    """

    def __init__(self, model):
        super().__init__()
        self.head = torch.nn.Linear(model.config.text_config.hidden_size, len(SHAPES))
        self.features = []
        self.hook = model.model.merger.register_forward_hook(lambda module, args, output: self.features.extend(output))

    def loss(self, shapes):
        pooled = torch.stack([f.mean(0) for f in self.features])
        self.features.clear()
        target = torch.tensor([SHAPES.index(s) for s in shapes])
        return torch.nn.functional.cross_entropy(self.head(pooled), target)


def train(steps: int, batch_size: int, lr: float, output: Path, log_every: int = 50) -> dict:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch.manual_seed(TRAIN_SEED)
    rng = random.Random(TRAIN_SEED)
    start = Path(tempfile.mkdtemp(prefix="tiny-start-"))
    build_tiny_checkpoint(start)
    processor = AutoProcessor.from_pretrained(start)
    model = AutoModelForImageTextToText.from_pretrained(start, dtype=torch.float32)
    model.train()
    probe = ShapeProbe(model)
    optimizer = torch.optim.AdamW([*model.parameters(), *probe.parameters()], lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))
    )
    kinds, weights = list(KINDS), list(KINDS.values())
    began, running = time.time(), 0.0
    for step in range(1, steps + 1):
        kind = rng.choices(kinds, weights)[0]  # one kind per batch: image and video batches differ in options
        samples = [sample(kind, rng) for _ in range(batch_size)]
        batch = training_batch(processor, samples)
        loss = model(**batch).loss
        if kind == "video":
            probe.features.clear()  # video frames carry no shape labels
        else:
            loss = loss + probe.loss([shape for s in samples for shape in s.shapes])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        running += loss.item()
        if step % log_every == 0:
            print(f"step {step:5d}  loss {running / log_every:.4f}  lr {schedule.get_last_lr()[0]:.2e}  {time.time() - began:6.0f}s", flush=True)
            running = 0.0
    probe.hook.remove()
    scores = evaluate(model, processor)
    model.eval()
    if output.exists():
        shutil.rmtree(output)
    model.save_pretrained(output)
    processor.save_pretrained(output)
    recipe = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": TRAIN_SEED, "eval_seed": EVAL_SEED,
              "kinds": KINDS, "held_out_accuracy": scores, "train_seconds": round(time.time() - began)}
    (output / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    (output / "README.md").write_text(
        "Tiny MiniCPM-V 4.6-architecture checkpoint trained by scripts/train_tiny.py on drawn pictures: it answers\n"
        "the colour (8) and shape (3) of one shape, the colour of the first/second of two images, and the colour\n"
        "of a video. Nothing else. See recipe.json for the settings and held-out accuracy.\n"
    )
    shutil.rmtree(start, ignore_errors=True)
    return scores


def print_table(scores: dict) -> None:
    print(f"{'task':<12} {'held-out accuracy':>18} {'goal':>6}")
    for kind, value in scores.items():
        print(f"{kind:<12} {value:>17.1%} {GOALS[kind]:>6.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1600)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--output", type=Path, default=TRAINED_TINY)
    parser.add_argument("--evaluate-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.evaluate_only:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        scores = evaluate(AutoModelForImageTextToText.from_pretrained(args.output), AutoProcessor.from_pretrained(args.output))
    else:
        scores = train(args.steps, args.batch_size, args.lr, args.output)
    print_table(scores)


if __name__ == "__main__":
    main()
