"""image_classification (the published image_classification_training): fine-tunes an
AutoModelForImageClassification (a ViT, say) with transformers' Trainer on labelled images,
with a fresh head sized to the task's labels. Accuracy on the evaluation images is measured
before and after training (the training images themselves when no evaluation split is
given), so the result shows what the run learnt."""
import base64
import io
import os
import random
import time

from .protocol import BridgeError, invalid
from . import spec as specs

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
OPTIMISERS = {"adam": "adamw_torch", "adamw": "adamw_torch", "adamw_torch": "adamw_torch",
              "sgd": "sgd", "adafactor": "adafactor"}


def _folder_rows(root):
    """imagefolder layout: root/<label>/<image>."""
    rows = []
    for label in sorted(os.listdir(root)):
        folder = os.path.join(root, label)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith(IMAGE_SUFFIXES):
                rows.append({"image": os.path.join(folder, name), "label": label})
    return rows


def _dataset_root(data):
    for key in ("dataset_name", "path", "data_dir", "url"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value[len("file://"):] if value.startswith("file://") else value
    return None


def _split_rows(data, split):
    """Rows of a local dataset folder's split: root/<split>/<label>/… when that exists, else
    root/<label>/… (the training split only)."""
    root = _dataset_root(data)
    if root is None or not os.path.isdir(root):
        return None
    nested = os.path.join(root, split)
    if os.path.isdir(nested):
        return _folder_rows(nested)
    return _folder_rows(root) if split == str(data.get("split", "train")) else None


def rows_of(spec):
    """(train rows, eval rows or None, image field, label field): rows are mappings with the
    image (a path, base64 or a data: URI) and the label."""
    data = specs.section(spec, "data")
    image_field = str(data.get("image_column", data.get("image_field", "image")))
    label_field = str(data.get("label_column", data.get("label_field", "label")))
    split = str(data.get("split", "train"))
    train = _split_rows(data, split)
    evaluation = None
    if train is not None:
        image_field, label_field = "image", "label"
        if data.get("eval_split"):
            evaluation = _split_rows(data, str(data["eval_split"]))
            if not evaluation:
                raise invalid(f"data.eval_split: no images under {_dataset_root(data)}/"
                              f"{data['eval_split']}")
    else:
        root = _dataset_root(data)
        if root and not any(isinstance(data.get(k), list) for k in ("items", "rows", "examples")) \
                and not root.endswith((".jsonl", ".json")):
            raise invalid(f"data: {root} is not a local image folder (<label>/<image> "
                          "subfolders) or JSONL file; this worker has no hub access")
        train = specs._raw_rows(data)
    if isinstance(data.get("eval_items"), list):
        evaluation = data["eval_items"]
    for name, rows in (("data", train), ("data.eval_items", evaluation or [])):
        for number, row in enumerate(rows, start=1):
            if not isinstance(row, dict) or row.get(image_field) is None or row.get(label_field) is None:
                raise invalid(f"{name} row {number} must be a mapping with {image_field!r} (a path "
                              f"or base64) and {label_field!r}")
    max_samples = data.get("max_samples")
    if max_samples is not None:
        train = train[: int(max_samples)]
        if evaluation is not None:
            evaluation = evaluation[: int(data.get("max_eval_samples") or max_samples)]
    if not train:
        raise invalid("data holds no training images")
    return train, evaluation, image_field, label_field


def label_names(spec, rows, label_field):
    explicit = specs.section(spec, "data").get("labels")
    if explicit:
        if not isinstance(explicit, list):
            raise invalid("data.labels must be a list of label names")
        names = [str(n) for n in explicit]
    else:
        raw = {row[label_field] for row in rows}
        if all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            names = [str(v) for v in sorted(raw)]
        else:
            names = sorted(str(v) for v in raw)
    if len(names) < 2:
        raise invalid(f"image classification needs at least two labels, got {names}")
    unknown = sorted({str(row[label_field]) for row in rows} - set(names))
    if unknown:
        raise invalid(f"labels {unknown} are not in data.labels {names}")
    return names


def load_image(value, number):
    from PIL import Image

    try:
        if isinstance(value, str) and value.startswith("data:"):
            value = value.split(",", 1)[1]
            return Image.open(io.BytesIO(base64.b64decode(value))).convert("RGB")
        if isinstance(value, str) and (value.startswith("/") or os.path.exists(value)):
            path = value[len("file://"):] if value.startswith("file://") else value
            with Image.open(path) as image:
                return image.convert("RGB")
        if isinstance(value, str):
            return Image.open(io.BytesIO(base64.b64decode(value, validate=True))).convert("RGB")
    except (OSError, ValueError) as exc:
        raise invalid(f"image {number}: cannot read it ({exc})") from exc
    raise invalid(f"image {number} must be a local path, base64 or a data: URI")


def training_options(spec):
    t = specs.section(spec, "training")
    args = specs.trainer_arguments(spec, {"learning_rate": 5e-5, "num_train_epochs": 3.0,
                                          "batch_size": 16, "save_steps": 100})
    if t.get("logging_steps") is None:
        args["logging_steps"] = 10
    if t.get("optimizer") is not None:
        name = str(t["optimizer"]).lower()
        if name not in OPTIMISERS:
            raise invalid(f"training.optimizer must be one of {', '.join(OPTIMISERS)}, got {name!r}")
        args["optim"] = OPTIMISERS[name]
    return args, bool(t.get("augmentation", False)), bool(t.get("save_model", True))


def accuracy(model, batches):
    import torch

    model.eval()
    right = total = 0
    with torch.no_grad():
        for pixels, labels in batches:
            predicted = model(pixel_values=pixels).logits.argmax(dim=-1)
            right += int((predicted == labels).sum())
            total += len(labels)
    model.train()
    return right / total if total else None


def run(task_type, spec, channel, output_dir):
    identifier, revision, trust = specs.model_location(spec)
    train_rows, eval_rows, image_field, label_field = rows_of(spec)
    names = label_names(spec, train_rows + (eval_rows or []), label_field)
    args, augment, save_model = training_options(spec)
    label2id = {n: i for i, n in enumerate(names)}

    import torch
    from PIL import ImageOps
    from transformers import (AutoImageProcessor, AutoModelForImageClassification,
                              PrinterCallback, Trainer, TrainingArguments, set_seed)

    from .models import device_kind
    from .progress import ProgressReporter

    started = time.monotonic()
    set_seed(args["seed"])
    train_images = [load_image(r[image_field], n) for n, r in enumerate(train_rows, start=1)]
    eval_images = [load_image(r[image_field], n) for n, r in enumerate(eval_rows or [], start=1)]
    kwargs = {"trust_remote_code": trust}
    if revision and not identifier.startswith("/"):
        kwargs["revision"] = revision
    channel.log(f"loading {identifier} on {device_kind()}: {len(names)} labels {names}")
    try:
        processor = AutoImageProcessor.from_pretrained(identifier, use_fast=False, **kwargs)
        model = AutoModelForImageClassification.from_pretrained(
            identifier, num_labels=len(names), id2label=dict(enumerate(names)),
            label2id=label2id, ignore_mismatched_sizes=True, torch_dtype=torch.float32, **kwargs)
    except OSError as exc:
        raise BridgeError("failed_precondition", f"cannot load model {identifier}: {exc}") from exc
    if args["gradient_checkpointing"]:
        model.gradient_checkpointing_enable()

    def encode(images):
        return processor(images=images, return_tensors="pt")["pixel_values"]

    rng = random.Random(args["seed"])

    def augmented(image):
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        w, h = image.size
        padded = ImageOps.expand(image, border=4, fill=0)
        left, top = rng.randint(0, 8), rng.randint(0, 8)
        return padded.crop((left, top, left + w, top + h))

    train_labels = torch.tensor([label2id[str(r[label_field])] for r in train_rows])

    class Images(torch.utils.data.Dataset):
        def __init__(self, images, labels, augment_them):
            self.images, self.labels, self.augment = images, labels, augment_them
            self.pixels = None if augment_them else encode(images)

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            pixels = encode([augmented(self.images[i])])[0] if self.augment else self.pixels[i]
            return {"pixel_values": pixels, "labels": self.labels[i]}

    def collate(features):
        return {"pixel_values": torch.stack([f["pixel_values"] for f in features]),
                "labels": torch.stack([f["labels"] for f in features])}

    if eval_rows:
        eval_pixels = encode(eval_images)
        eval_labels = torch.tensor([label2id[str(r[label_field])] for r in eval_rows])
    else:
        eval_pixels, eval_labels = encode(train_images), train_labels
    batch = args["per_device_train_batch_size"]
    eval_batches = [(eval_pixels[i:i + batch], eval_labels[i:i + batch])
                    for i in range(0, len(eval_labels), batch)]
    accuracy_before = accuracy(model, eval_batches)

    args.pop("save_only_model", None)
    try:
        config = TrainingArguments(
            output_dir=os.path.join(output_dir, "checkpoints"), report_to=[], disable_tqdm=True,
            use_cpu=device_kind() == "cpu", dataloader_num_workers=0,
            remove_unused_columns=False, label_names=["labels"], save_only_model=True,
            **args)
    except (ValueError, TypeError) as exc:
        raise invalid(f"training: {exc}") from exc
    reporter = ProgressReporter(channel, output_dir)
    trainer = Trainer(model=model, args=config, data_collator=collate, callbacks=[reporter],
                      train_dataset=Images(train_images, train_labels, augment))
    trainer.remove_callback(PrinterCallback)
    channel.log(f"training on {len(train_rows)} images, evaluating on "
                f"{len(eval_rows) if eval_rows else 'the training'} images")
    outcome = trainer.train()
    reporter.flush()
    accuracy_after = accuracy(model, eval_batches)
    channel.log(f"accuracy {accuracy_before:.3f} → {accuracy_after:.3f}")

    summary = reporter.summary()
    result = {
        "ok": True,
        "model_name": identifier,
        "dataset_size": len(train_rows),
        "eval_size": len(eval_rows) if eval_rows else None,
        "num_labels": len(names),
        "labels": names,
        "global_step": outcome.global_step,
        "train_loss": outcome.training_loss,
        "train_losses": [loss for _, loss in summary["loss_history"]],
        "eval_accuracy": accuracy_after,
        "accuracy_before": accuracy_before,
        "accuracy_evaluated_on": "eval" if eval_rows else "train",
        "training_time_seconds": round(time.monotonic() - started, 3),
        "metrics": {**summary, **{k: v for k, v in outcome.metrics.items()
                                  if isinstance(v, (int, float))}},
        "checkpoints_dir": {"path": "checkpoints"},
    }
    if save_model:
        path = os.path.join(output_dir, "final_model")
        trainer.save_model(path)
        processor.save_pretrained(path)
        if os.path.exists(os.path.join(path, "training_args.bin")):
            os.remove(os.path.join(path, "training_args.bin"))
        result["final_model"] = {"path": "final_model"}
    return result
