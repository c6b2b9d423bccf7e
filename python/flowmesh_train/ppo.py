"""ppo: trl's PPOTrainer. The policy is the task's causal LM, the reference policy a frozen
copy of it, the value model the same backbone with a one-output head; the reward comes from
`reward_model` (a local sequence-classification model, which reads the decoded text with its
own tokenizer) or, without one, from a one-output head on the policy's backbone, seeded and
never trained: that run exercises PPO end to end but optimises an arbitrary score (the log
says so). Each step generates responses for a batch of prompts, scores them and updates the
policy and value model."""
import os
import time

from .protocol import BridgeError, invalid
from . import spec as specs

REWARD_TYPES = ("classification", "sentiment", "score")


def ppo_options(spec, rows):
    """The PPOConfig arguments of spec.training and spec.generation, checked before torch."""
    t = specs.section(spec, "training")
    g = specs.section(spec, "generation")
    per_device = specs.integer("training", t, "per_device_train_batch_size",
                               specs.integer("training", t, "batch_size", 1, 1), 1)
    accumulation = specs.integer("training", t, "gradient_accumulation_steps", 1, 1)
    mini_batches = specs.integer("training", t, "num_mini_batches", 1, 1)
    # The published templates ask for more rollouts per step than a short prompt list
    # holds (batch_size 4 × accumulation 4 over 8 prompts); trl would then make no batch at
    # all (its loader drops the last, short one). Shrink accumulation, then the batch, as
    # the published executor does, and say so.
    notes = []
    while per_device * accumulation * mini_batches > len(rows) and accumulation > 1:
        accumulation -= 1
    while per_device * accumulation * mini_batches > len(rows) and per_device > 1:
        per_device -= 1
    if per_device * accumulation * mini_batches > len(rows):
        raise invalid(f"training.num_mini_batches ({mini_batches}) is more than the "
                      f"{len(rows)} prompts in data")
    asked = (specs.integer("training", t, "per_device_train_batch_size",
                           specs.integer("training", t, "batch_size", 1, 1), 1),
             specs.integer("training", t, "gradient_accumulation_steps", 1, 1))
    if asked != (per_device, accumulation):
        notes.append(f"batch {asked[0]} × accumulation {asked[1]} is more than the {len(rows)} "
                     f"prompts: using {per_device} × {accumulation}")
    rollouts = per_device * accumulation * mini_batches
    steps = specs.integer("training", t, "steps", None, 1)
    if steps is None and t.get("max_steps") not in (None, -1):
        steps = specs.integer("training", t, "max_steps", None, 1)
    total_episodes = specs.integer("training", t, "total_episodes", None, 1)
    if steps is not None:
        total_episodes = steps * rollouts
    epochs = specs.number("training", t, "num_train_epochs", 1.0, 0.0, None, low_exclusive=True)
    response_length = specs.integer("generation", g, "max_new_tokens",
                                    specs.integer("training", t, "response_length", 32, 1, 4096),
                                    1, 4096)
    temperature = specs.number("generation", g, "temperature",
                               specs.number("training", t, "temperature", 0.7, 0.0, 10.0), 0.0, 10.0)
    stop = g.get("stop")
    if isinstance(stop, list) and len(stop) == 1:
        stop = stop[0]
    if stop not in (None, "eos"):
        raise invalid(f"generation.stop: trl's PPO stops only at the end-of-sequence token "
                      f"('eos'), got {stop!r}")
    kl = t.get("kl_coef", t.get("init_kl_coef"))
    args = {
        "learning_rate": specs.number("training", t, "learning_rate", 1.41e-5, 0.0, None, True),
        "per_device_train_batch_size": per_device,
        "gradient_accumulation_steps": accumulation,
        "num_mini_batches": mini_batches,
        "num_ppo_epochs": specs.integer("training", t, "ppo_epochs", 4, 1, 100),
        "kl_coef": specs.number("training", {"kl_coef": kl}, "kl_coef", 0.05, 0.0),
        "cliprange": specs.number("training", t, "cliprange", 0.2, 0.0, None, True),
        "cliprange_value": specs.number("training", t, "cliprange_value", 0.2, 0.0, None, True),
        "vf_coef": specs.number("training", t, "vf_coef", 0.1, 0.0),
        "gamma": specs.number("training", t, "gamma", 1.0, 0.0, 1.0),
        "lam": specs.number("training", t, "lam", 0.95, 0.0, 1.0),
        "whiten_rewards": bool(t.get("whiten_rewards", False)),
        "response_length": response_length,
        "temperature": temperature,
        "stop_token": stop,
        "seed": specs.integer("training", t, "seed", 42, 0, 2**32 - 1),
        "num_train_epochs": epochs,
        "save_strategy": str(t.get("save_strategy", "steps")),
        "save_steps": specs.integer("training", t, "save_steps",
                                    specs.integer("training", t, "save_freq", 500, 1), 1),
        "logging_steps": specs.integer("training", t, "logging_steps", 1, 1),
    }
    if total_episodes is not None:
        args["total_episodes"] = total_episodes
    if t.get("missing_eos_penalty") is not None:
        args["missing_eos_penalty"] = specs.number("training", t, "missing_eos_penalty", None)
    if t.get("save_total_limit") is not None:
        args["save_total_limit"] = specs.integer("training", t, "save_total_limit", 1, 1)
    if args["save_strategy"] not in ("steps", "epoch", "no"):
        raise invalid(f"training.save_strategy must be steps, epoch or no, got {args['save_strategy']!r}")
    if t.get("target_kl") is not None:
        notes.append("training.target_kl is not used by trl's PPOTrainer (kl_coef is)")
    max_prompt = specs.integer("training", t, "max_seq_length", 512, 1)
    return args, max_prompt, notes


def reward_options(spec):
    r = spec.get("reward_model")
    if r is None:
        return None
    if isinstance(r, str):
        r = {"identifier": r}
    if not isinstance(r, dict) or not r.get("identifier"):
        raise invalid("reward_model.identifier is required (a local sequence-classification "
                      "model folder)")
    kind = str(r.get("type", "classification")).lower()
    if kind not in REWARD_TYPES:
        raise invalid(f"reward_model.type must be one of {', '.join(REWARD_TYPES)}, got {kind!r}")
    identifier = str(r["identifier"])
    if identifier.startswith("/") and not os.path.isfile(os.path.join(identifier, "config.json")):
        raise invalid(f"reward_model.identifier: no model folder at {identifier}")
    return {"identifier": identifier, "type": kind,
            "scale": specs.number("reward_model", r, "scale", 1.0),
            "max_length": specs.integer("reward_model", r, "max_length", 512, 1),
            "positive_label": r.get("positive_label"), "negative_label": r.get("negative_label")}


def _text_reward(options, policy_tokenizer):
    """A reward model for trl's get_reward that scores the decoded text with its own
    tokenizer: trl reads `model.score(backbone(...).hidden_states[-1])` at the last token, so
    the backbone hands back the score as a one-wide hidden state on every position."""
    import types

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(options["identifier"])
        classifier = AutoModelForSequenceClassification.from_pretrained(options["identifier"])
    except OSError as exc:
        raise BridgeError("failed_precondition",
                          f"cannot load reward model {options['identifier']}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if classifier.config.pad_token_id is None:
        classifier.config.pad_token_id = tokenizer.pad_token_id
    classifier.eval()
    for p in classifier.parameters():
        p.requires_grad_(False)
    labels = {str(v).lower(): int(k) for k, v in (classifier.config.id2label or {}).items()}

    def label(name, keyword):
        if isinstance(name, int):
            return name
        if name is not None:
            return labels.get(str(name).lower())
        return next((i for n, i in labels.items() if keyword and keyword in n), None)

    positive = label(options["positive_label"], "pos" if options["type"] == "sentiment" else None)
    negative = label(options["negative_label"], "neg" if options["type"] == "sentiment" else None)

    class Backbone(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.classifier = classifier

        def forward(self, input_ids, attention_mask=None, **_):
            texts = [policy_tokenizer.decode(row[mask.bool()] if mask is not None else row,
                                             skip_special_tokens=True)
                     for row, mask in zip(input_ids, attention_mask if attention_mask is not None
                                          else [None] * len(input_ids))]
            encoded = tokenizer(texts, padding=True, truncation=True,
                                max_length=options["max_length"], return_tensors="pt")
            with torch.no_grad():
                logits = self.classifier(**encoded).logits.float()
            if logits.shape[-1] == 1:
                scores = logits[:, 0]
            elif positive is not None:
                scores = logits[:, positive] - (logits[:, negative] if negative is not None else 0)
            else:
                scores = logits.max(dim=-1).values
            scores = (scores * options["scale"]).to(input_ids.device)
            hidden = scores[:, None, None].expand(input_ids.shape[0], input_ids.shape[1], 1)
            return types.SimpleNamespace(hidden_states=(hidden.contiguous(),))

    class TextReward(torch.nn.Module):
        base_model_prefix = "backbone"

        def __init__(self):
            super().__init__()
            self.backbone = Backbone()

        def score(self, hidden):
            return hidden

    return TextReward()


def run(task_type, spec, channel, output_dir):
    identifier, revision, trust = specs.model_location(spec)
    rows = specs.prompts(spec, query_field=None)
    args, max_prompt, notes = ppo_options(spec, rows)
    reward = reward_options(spec)
    save_model = bool(specs.section(spec, "training").get("save_model", True))

    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, PrinterCallback, set_seed
    from trl import PPOConfig, PPOTrainer

    from .models import device_kind, load
    from .progress import ProgressReporter

    for note in notes:
        channel.log(note, level="warning")
    started = time.monotonic()
    set_seed(args["seed"])
    model_name, policy, tokenizer = load(spec, channel)
    tokenizer.padding_side = "left"  # prompts are continued: pad before them
    ref_policy = load(spec, channel)[1]
    kwargs = {"trust_remote_code": trust}
    if revision and not identifier.startswith("/"):
        kwargs["revision"] = revision
    value_model = AutoModelForSequenceClassification.from_pretrained(
        identifier, num_labels=1, torch_dtype=torch.float32, **kwargs)
    value_model.config.pad_token_id = tokenizer.pad_token_id
    if reward is not None:
        reward_model = _text_reward(reward, tokenizer)
        channel.log(f"reward: {reward['identifier']} ({reward['type']})")
    else:
        reward_model = AutoModelForSequenceClassification.from_pretrained(
            identifier, num_labels=1, torch_dtype=torch.float32, **kwargs)
        reward_model.config.pad_token_id = tokenizer.pad_token_id
        channel.log("no reward_model: rewards come from an untrained one-output head on the "
                    "policy's backbone (seeded); set reward_model to optimise a real score",
                    level="warning")

    dataset = Dataset.from_dict({"query": rows}).map(
        lambda batch: tokenizer(batch["query"], truncation=True, max_length=max_prompt),
        batched=True, remove_columns=["query"])
    try:
        config = PPOConfig(output_dir=os.path.join(output_dir, "checkpoints"), report_to=[],
                           disable_tqdm=True, use_cpu=device_kind() == "cpu",
                           dataloader_num_workers=0, num_sample_generations=0,
                           save_only_model=True, save_safetensors=True,
                           local_rollout_forward_batch_size=args["per_device_train_batch_size"],
                           **args)
    except (ValueError, TypeError) as exc:
        raise invalid(f"training: {exc}") from exc
    reporter = ProgressReporter(channel, output_dir, loss_key="loss/policy_avg",
                                extra={"objective/scores": "reward", "objective/kl": "kl"})
    trainer = PPOTrainer(args=config, processing_class=tokenizer, model=policy,
                         ref_model=ref_policy, reward_model=reward_model, train_dataset=dataset,
                         value_model=value_model, eval_dataset=dataset, callbacks=[reporter])
    trainer.remove_callback(PrinterCallback)
    channel.log(f"PPO on {len(rows)} prompts: {config.num_total_batches} steps of "
                f"{config.batch_size} rollouts, {config.response_length} new tokens each")
    trainer.train()
    reporter.flush()

    summary = reporter.summary()
    rewards = reporter.history("reward")
    result = {
        "ok": True,
        "training_successful": True,
        "model_name": model_name,
        "dataset_size": len(rows),
        "global_step": trainer.state.global_step,
        "episodes": trainer.state.episode,
        "training_time_seconds": round(time.monotonic() - started, 3),
        "reward_model": reward["identifier"] if reward else None,
        "metrics": {**summary, "reward_history": rewards,
                    "first_reward": rewards[0][1] if rewards else None,
                    "last_reward": rewards[-1][1] if rewards else None},
        "checkpoints_dir": {"path": "checkpoints"},
    }
    if save_model:
        path = os.path.join(output_dir, "final_model")
        trainer.save_model(path)
        tokenizer.save_pretrained(path)
        if os.path.exists(os.path.join(path, "training_args.bin")):
            os.remove(os.path.join(path, "training_args.bin"))
        result["final_model"] = {"path": "final_model"}
        channel.log("saved final_model")
    return result
