"""Reads a task spec (the published field names) into what the trainers need: the model to
load, the training rows and the trainer arguments. Every refusal is an invalid_argument
BridgeError raised before any model is loaded. The worker has already checked the types and
ranges of the `training` and `lora` options against the option tables
(src/spec/executor_options.cc); the rules here are the ones that need the data or cross
several fields."""
import json
import os

from .protocol import invalid

TEXT_KEYS = ("text", "content")
PROMPT_KEYS = ("prompt", "question", "instruction", "input")
RESPONSE_KEYS = ("response", "completion", "answer", "output")


def section(spec, name):
    value = spec.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"{name} must be a mapping")
    return value


def model_location(spec):
    """(path or hub identifier, revision, trust_remote_code) of spec.model.source."""
    model = section(spec, "model")
    source = model.get("source") or {}
    if isinstance(source, str):
        source = {"type": "huggingface", "identifier": source}
    identifier = source.get("identifier") or source.get("path") or model.get("name")
    if not identifier:
        raise invalid("model.source.identifier is required (a local model folder or a "
                      "Hugging Face identifier)")
    kind = str(source.get("type") or "huggingface").lower()
    identifier = str(identifier)
    if kind == "local" or identifier.startswith("/"):
        if not os.path.isdir(identifier):
            raise invalid(f"model.source.identifier: no model folder at {identifier}")
        if not os.path.exists(os.path.join(identifier, "config.json")):
            raise invalid(f"model.source.identifier: {identifier} has no config.json "
                          "(a transformers model folder is needed for training)")
    elif kind != "huggingface":
        raise invalid(f"model.source.type {kind!r} cannot be trained (local or huggingface)")
    return identifier, source.get("revision"), bool(source.get("trust_remote_code", False))


def _read_jsonl(path):
    if not os.path.isfile(path):
        raise invalid(f"data: no JSONL file at {path}")
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, start=1):
            raw = raw.strip()
            if not raw:
                continue
            try:
                rows.append(json.loads(raw))
            except ValueError as exc:
                raise invalid(f"data: line {number} of {path} is not JSON: {exc}") from exc
    return rows


def _raw_rows(data):
    """The records of spec.data in any of its published forms."""
    for key in ("items", "prompts", "preferences", "rows", "examples"):
        if isinstance(data.get(key), list):
            return data[key]
    jsonl = data.get("jsonl")
    path = data.get("jsonl_path")
    if isinstance(jsonl, dict):
        path = jsonl.get("path") or jsonl.get("worker_path") or path
    elif isinstance(jsonl, str):
        path = jsonl
    if not path and str(data.get("type", "")).lower() == "dataset":
        path = data.get("path") or data.get("url")
    if not path and data.get("dataset_name"):
        path = data["dataset_name"]
    if path:
        path = str(path)
        if path.startswith("file://"):
            path = path[len("file://"):]
        if path.endswith(".jsonl") or path.endswith(".json") or os.path.isfile(path):
            return _read_jsonl(path)
        raise invalid(f"data: {path} is not a local JSONL file (this worker has no hub access)")
    raise invalid("data must hold the training rows: items/prompts/preferences (a list), "
                  "or jsonl.path / jsonl_path (a JSONL file on the worker)")


def _field(data, name):
    jsonl = data.get("jsonl") if isinstance(data.get("jsonl"), dict) else {}
    return jsonl.get(name) or data.get(name)


def _pick(record, explicit, candidates):
    if explicit:
        return record.get(explicit)
    for key in candidates:
        if key in record:
            return record[key]
    return None


def _limit(data, rows):
    max_samples = data.get("max_samples")
    if max_samples is not None:
        try:
            rows = rows[: max(0, int(max_samples))]
        except (TypeError, ValueError) as exc:
            raise invalid(f"data.max_samples must be an integer, got {max_samples!r}") from exc
    if not rows:
        raise invalid("data holds no training rows")
    return rows


def sft_rows(spec):
    """Rows of {"text"} or {"prompt", "completion"} (the loss then covers the completion)."""
    data = section(spec, "data")
    text_field = _field(data, "text_field")
    prompt_field = _field(data, "prompt_field") or data.get("prompt_column")
    response_field = _field(data, "response_field") or data.get("response_column")
    separator = _field(data, "separator")
    separator = "\n" if separator is None else str(separator)
    rows = []
    for number, record in enumerate(_raw_rows(data), start=1):
        if isinstance(record, str):
            rows.append({"text": record})
            continue
        if not isinstance(record, dict):
            raise invalid(f"data row {number} must be a string or a mapping")
        text = record.get(text_field) if text_field else None
        if text is None and not (prompt_field or response_field):
            text = _pick(record, None, TEXT_KEYS)
        if text is not None:
            rows.append({"text": str(text)})
            continue
        prompt = _pick(record, prompt_field, PROMPT_KEYS)
        response = _pick(record, response_field, RESPONSE_KEYS)
        if prompt is None or response is None:
            raise invalid(f"data row {number} has neither a text field nor a prompt and a "
                          f"response (keys: {sorted(record)})")
        rows.append({"prompt": str(prompt) + separator, "completion": str(response)})
    rows = _limit(data, rows)
    if len({tuple(sorted(r)) for r in rows}) > 1:
        raise invalid("data rows mix plain text with prompt/response pairs")
    return rows


def preference_rows(spec):
    """Rows of {"prompt", "chosen", "rejected"} (dpo)."""
    data = section(spec, "data")
    keys = {k: _field(data, f"{k}_field") or k for k in ("prompt", "chosen", "rejected")}
    rows = []
    for number, record in enumerate(_raw_rows(data), start=1):
        if not isinstance(record, dict) or any(record.get(k) is None for k in keys.values()):
            raise invalid(f"data row {number} must be a mapping with "
                          f"{', '.join(keys.values())}")
        rows.append({k: str(record[v]) for k, v in keys.items()})
    return _limit(data, rows)


def _number(section_value, key, default, kind=float):
    value = section_value.get(key)
    if value is None:
        return default
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise invalid(f"training.{key} must be a number, got {value!r}") from exc


def trainer_arguments(spec, defaults):
    """The transformers/trl arguments of spec.training (published names and defaults)."""
    t = section(spec, "training")
    epochs = t.get("num_train_epochs", t.get("epochs"))
    args = {
        "num_train_epochs": float(epochs) if epochs is not None else defaults.get("num_train_epochs", 1.0),
        "max_steps": _number(t, "max_steps", -1, int),
        "per_device_train_batch_size": _number(
            t, "per_device_train_batch_size", _number(t, "batch_size", defaults.get("batch_size", 2), int), int),
        "gradient_accumulation_steps": _number(t, "gradient_accumulation_steps", 1, int),
        "learning_rate": _number(t, "learning_rate", defaults["learning_rate"]),
        "lr_scheduler_type": str(t.get("lr_scheduler_type", "linear")),
        "warmup_steps": _number(t, "warmup_steps", 0, int),
        "warmup_ratio": _number(t, "warmup_ratio", 0.0),
        "weight_decay": _number(t, "weight_decay", 0.0),
        "max_grad_norm": _number(t, "max_grad_norm", 1.0),
        "logging_steps": _number(t, "logging_steps", 1, int),
        "save_steps": _number(t, "save_steps", defaults.get("save_steps", 500), int),
        "save_strategy": str(t.get("save_strategy", "steps")),
        "seed": _number(t, "seed", 42, int),
        "bf16": bool(t.get("bf16", False)),
        "fp16": bool(t.get("fp16", False)),
        "gradient_checkpointing": bool(t.get("gradient_checkpointing", False)),
        "optim": str(t.get("optim", "adamw_torch")),
        "save_only_model": bool(t.get("save_only_model", True)),
    }
    if t.get("save_total_limit") is not None:
        args["save_total_limit"] = _number(t, "save_total_limit", 1, int)
    if args["max_steps"] == 0:
        raise invalid("training.max_steps must be positive, or -1 to train by epochs")
    if args["save_strategy"] not in ("steps", "epoch", "no", "best"):
        raise invalid(f"training.save_strategy must be steps, epoch or no, got {args['save_strategy']!r}")
    if args["bf16"] and args["fp16"]:
        raise invalid("training.bf16 and training.fp16 cannot both be true")
    schedulers = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                  "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau",
                  "cosine_with_min_lr", "warmup_stable_decay")
    if args["lr_scheduler_type"] not in schedulers:
        raise invalid(f"training.lr_scheduler_type must be one of {', '.join(schedulers)}, "
                      f"got {args['lr_scheduler_type']!r}")
    return args


def max_length(spec, default):
    t = section(spec, "training")
    return _number(t, "max_seq_length", _number(t, "max_length", default, int), int)


def lora_arguments(spec):
    """peft.LoraConfig arguments of spec.lora (published names and defaults)."""
    lora = section(spec, "lora")
    targets = lora.get("target_modules") or ["q_proj", "k_proj", "v_proj", "o_proj"]
    if isinstance(targets, str):
        targets = [targets] if targets == "all-linear" else [s.strip() for s in targets.split(",") if s.strip()]
    bias = str(lora.get("bias", "none"))
    if bias not in ("none", "all", "lora_only"):
        raise invalid(f"lora.bias must be none, all or lora_only, got {bias!r}")
    task_type = str(lora.get("task_type", "CAUSAL_LM")).upper()
    if task_type != "CAUSAL_LM":
        raise invalid(f"lora.task_type {task_type!r} is not trained here (CAUSAL_LM)")
    alpha = lora.get("alpha", lora.get("lora_alpha", 32))
    dropout = lora.get("dropout", lora.get("lora_dropout", 0.05))
    return {
        "r": int(lora.get("r", 16)),
        "lora_alpha": float(alpha),
        "lora_dropout": float(dropout),
        "bias": bias,
        "target_modules": targets[0] if targets == ["all-linear"] else [str(t) for t in targets],
        "use_rslora": bool(lora.get("use_rslora", False)),
    }


def _text_of(record, number):
    """The text of one prompt item: a string, a mapping with a text/prompt field, or a chat
    message list (its last message's content)."""
    if isinstance(record, str):
        return record
    if isinstance(record, list) and record and isinstance(record[-1], dict):
        content = record[-1].get("content")
        if isinstance(content, str):
            return content
    if isinstance(record, dict):
        value = _pick(record, None, TEXT_KEYS + PROMPT_KEYS + ("query",))
        if isinstance(value, (str, int, float)):
            return str(value)
    raise invalid(f"data item {number} must be a string, a mapping with text or prompt, or a "
                  "chat message list")


def prompts(spec, query_field=None):
    """The prompts of spec.data (diffusion, omni, ppo): strings, mappings with text/prompt
    (or `query_field`), chat message lists; `max_samples` caps them."""
    data = section(spec, "data")
    field = query_field or _field(data, "query_field") or _field(data, "text_field")
    records = []
    for record in _raw_rows(data):
        # An upstream reference (`{node, path: items.*.output}`) materialises to one item
        # holding the list of that node's outputs: its strings are prompts each.
        if isinstance(record, list) and record and all(isinstance(r, str) for r in record):
            records.extend(record)
        else:
            records.append(record)
    found = []
    for number, record in enumerate(records, start=1):
        if field and isinstance(record, dict):
            if record.get(field) is None:
                raise invalid(f"data row {number} has no {field!r} field (keys: {sorted(record)})")
            found.append(str(record[field]))
        else:
            found.append(_text_of(record, number))
    found = _limit(data, found)
    if any(not p.strip() for p in found):
        raise invalid("data holds an empty prompt")
    return found


def integer(section_name, values, key, default, low=None, high=None):
    """values[key] as an int in [low, high], else an invalid_argument naming it."""
    value = values.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise invalid(f"{section_name}.{key} must be an integer, got {value!r}")
    try:
        value = int(value)
    except (TypeError, ValueError) as exc:
        raise invalid(f"{section_name}.{key} must be an integer, got {value!r}") from exc
    if (low is not None and value < low) or (high is not None and value > high):
        raise invalid(f"{section_name}.{key} must be an integer from {low} to {high}, got {value}")
    return value


def number(section_name, values, key, default, low=None, high=None, low_exclusive=False):
    """values[key] as a float in its range, else an invalid_argument naming it."""
    value = values.get(key)
    if value is None:
        return default
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise invalid(f"{section_name}.{key} must be a number, got {value!r}") from exc
    if value != value or (low is not None and (value < low or (low_exclusive and value == low))) \
            or (high is not None and value > high):
        low_word = f"above {low}" if low_exclusive else f"from {low}"
        raise invalid(f"{section_name}.{key} must be a number {low_word}"
                      f"{'' if high is None else f' to {high}'}, got {value}")
    return value
