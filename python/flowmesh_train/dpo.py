"""dpo: trl's DPOTrainer on {prompt, chosen, rejected} rows against a frozen copy of the
starting model. The result says how often the trained model prefers the chosen answer."""
import os
import time

from .protocol import invalid
from . import spec as specs

LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair",
              "sppo_hard", "aot", "aot_pair", "apo_zero", "apo_down", "discopop", "sft")


def preference_margins(model, tokenizer, rows):
    """Per row: log p(chosen | prompt) - log p(rejected | prompt) under `model`."""
    import torch

    def answer_logprob(prompt, answer):
        prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        full_ids = tokenizer(prompt + answer, add_special_tokens=True)["input_ids"]
        ids = torch.tensor([full_ids], device=model.device)
        with torch.no_grad():
            logits = model(ids).logits.float()
        logprobs = torch.log_softmax(logits[0, :-1], dim=-1)
        targets = ids[0, 1:]
        picked = logprobs.gather(1, targets.unsqueeze(1)).squeeze(1)
        return picked[len(prompt_ids) - 1:].sum().item()

    model.eval()
    margins = [answer_logprob(r["prompt"], r["chosen"]) - answer_logprob(r["prompt"], r["rejected"])
               for r in rows]
    model.train()
    return margins


def run(task_type, spec, channel, output_dir):
    specs.model_location(spec)
    rows = specs.preference_rows(spec)
    args = specs.trainer_arguments(spec, {"learning_rate": 5e-7})
    t = specs.section(spec, "training")
    beta = float(t.get("beta", 0.1))
    if beta <= 0:
        raise invalid(f"training.beta must be positive, got {beta}")
    loss_type = str(t.get("loss_type", "sigmoid"))
    if loss_type not in LOSS_TYPES:
        raise invalid(f"training.loss_type must be one of {', '.join(LOSS_TYPES)}, got {loss_type!r}")
    max_length = specs.max_length(spec, 1024)
    max_prompt_length = int(t.get("max_prompt_length", min(512, max_length)))
    if max_prompt_length > max_length:
        raise invalid(f"training.max_prompt_length ({max_prompt_length}) must be at most "
                      f"max_length ({max_length})")
    save_model = bool(t.get("save_model", True))

    from datasets import Dataset

    from .models import device_kind, load
    from .progress import ProgressReporter
    from transformers import PrinterCallback, set_seed
    from trl import DPOConfig, DPOTrainer

    started = time.monotonic()
    set_seed(args["seed"])
    model_name, model, tokenizer = load(spec, channel)
    _, ref_model, _ = load(spec, channel)
    before = preference_margins(model, tokenizer, rows)
    try:
        config = DPOConfig(
            output_dir=os.path.join(output_dir, "checkpoints"),
            report_to=[], disable_tqdm=True, use_cpu=device_kind() == "cpu",
            dataloader_num_workers=0, beta=beta, loss_type=loss_type,
            max_length=max_length, max_prompt_length=max_prompt_length,
            padding_value=tokenizer.pad_token_id, **args)
    except (ValueError, TypeError) as exc:
        raise invalid(f"training: {exc}") from exc
    reporter = ProgressReporter(channel, output_dir)
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=config,
                         train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         callbacks=[reporter])
    # Progress goes over the protocol; transformers' own per-step print of the log dict would
    # only add a task log line per step through the whole stack.
    trainer.remove_callback(PrinterCallback)
    outcome = trainer.train()
    reporter.flush()
    after = preference_margins(trainer.model, tokenizer, rows)

    def mean(values):
        return sum(values) / len(values)

    result = {
        "ok": True,
        "model_name": model_name,
        "dataset_size": len(rows),
        "global_step": outcome.global_step,
        "train_loss": outcome.training_loss,
        "training_time_seconds": round(time.monotonic() - started, 3),
        "metrics": {**reporter.summary(), **{k: v for k, v in outcome.metrics.items()
                                             if isinstance(v, (int, float))}},
        "preference": {
            "margin_before": mean(before),
            "margin_after": mean(after),
            "accuracy_before": mean([m > 0 for m in before]),
            "accuracy_after": mean([m > 0 for m in after]),
            # DPO's own measure: how often the margin grew against the starting model.
            "reward_accuracy": mean([a > b for a, b in zip(after, before)]),
        },
        "checkpoints_dir": {"path": "checkpoints"},
    }
    if save_model:
        path = os.path.join(output_dir, "final_model")
        trainer.save_model(path)
        tokenizer.save_pretrained(path)
        stray = os.path.join(path, "training_args.bin")
        if os.path.exists(stray):
            os.remove(stray)
        result["final_model"] = {"path": "final_model"}
    return result
