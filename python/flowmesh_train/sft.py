"""sft and lora_sft: trl's SFTTrainer on the task's rows (text, or prompt and completion
with the loss on the completion), the adapter or the whole model kept as result files."""
import os
import time

from .protocol import invalid
from . import spec as specs

DEFAULTS = {"sft": {"learning_rate": 5e-5}, "lora_sft": {"learning_rate": 2e-4}}


def run(task_type, spec, channel, output_dir):
    # Everything the spec says is read and checked before torch is imported.
    specs.model_location(spec)
    rows = specs.sft_rows(spec)
    args = specs.trainer_arguments(spec, DEFAULTS[task_type])
    max_length = specs.max_length(spec, 1024)
    packing = bool(specs.section(spec, "training").get("packing", False))
    lora = specs.lora_arguments(spec) if task_type == "lora_sft" else None
    save_model = bool(specs.section(spec, "training").get("save_model", True))

    from datasets import Dataset

    from .models import device_kind, load
    from .progress import ProgressReporter
    from transformers import PrinterCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    started = time.monotonic()
    set_seed(args["seed"])
    model_name, model, tokenizer = load(spec, channel)
    if lora is not None:
        from peft import LoraConfig, TaskType, get_peft_model
        try:
            model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, **lora))
        except ValueError as exc:  # e.g. target modules the model does not have
            raise invalid(f"lora: {exc}") from exc
        trainable, total = model.get_nb_trainable_parameters()
        channel.log(f"LoRA r={lora['r']} on {lora['target_modules']}: {trainable} of {total} "
                    "parameters trained")
    try:
        config = SFTConfig(
            output_dir=os.path.join(output_dir, "checkpoints"),
            report_to=[], disable_tqdm=True, use_cpu=device_kind() == "cpu",
            dataloader_num_workers=0, include_num_input_tokens_seen="non_padding",
            max_length=max_length, packing=packing, dataset_text_field="text",
            pad_token=tokenizer.pad_token, eos_token=tokenizer.eos_token,
            **args)
    except (ValueError, TypeError) as exc:
        raise invalid(f"training: {exc}") from exc
    reporter = ProgressReporter(channel, output_dir)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, callbacks=[reporter])
    # Progress goes over the protocol; transformers' own per-step print of the log dict would
    # only add a task log line per step through the whole stack.
    trainer.remove_callback(PrinterCallback)
    channel.log(f"training on {len(rows)} rows, {trainer.args.max_steps if args['max_steps'] > 0 else 'epochs'} steps")
    outcome = trainer.train()
    reporter.flush()

    result = {
        "ok": True,
        "model_name": model_name,
        "dataset_size": len(rows),
        "global_step": outcome.global_step,
        "train_loss": outcome.training_loss,
        "training_time_seconds": round(time.monotonic() - started, 3),
        "metrics": {**reporter.summary(), **{k: v for k, v in outcome.metrics.items()
                                             if isinstance(v, (int, float))}},
        "checkpoints_dir": {"path": "checkpoints"},
    }
    if save_model:
        folder = "final_lora" if lora is not None else "final_model"
        path = os.path.join(output_dir, folder)
        trainer.save_model(path)
        tokenizer.save_pretrained(path)
        _drop(os.path.join(path, "training_args.bin"))  # a pickle: nothing to load later
        result[folder] = {"path": folder}
        if lora is not None:
            result["base_model"] = model_name
        channel.log(f"saved {folder}")
    return result


def _drop(path):
    if os.path.exists(path):
        os.remove(path)
