"""The baseline of bench/run.sh train: the same SFT the fabric runs (trl's SFTTrainer, the same
model, rows and arguments), as a plain script in the same venv, without FlowMesh. Prints one
JSON line: tokens_per_second (non-padding input tokens over the training loop's time, measured
as python/flowmesh_train measures it), train_seconds, last_loss.

    python bench/train_direct.py MODEL_DIR ROWS_JSON ARGS_JSON"""
import json
import sys
import time

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, set_seed
from trl import SFTConfig, SFTTrainer


class Clock(TrainerCallback):
    def __init__(self):
        self.began = self.ended = None
        self.tokens = 0
        self.losses = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.began = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(logs["loss"])
            self.ended = time.monotonic()
            self.tokens = state.num_input_tokens_seen


def main():
    model_dir, rows, args = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    set_seed(args.get("seed", 42))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.config.use_cache = False
    config = SFTConfig(output_dir="/tmp/flowmesh-train-direct", report_to=[], disable_tqdm=True,
                       use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
                       include_num_input_tokens_seen="non_padding", save_strategy="no",
                       max_steps=args["max_steps"], per_device_train_batch_size=args["batch_size"],
                       learning_rate=args["learning_rate"], logging_steps=1, seed=args.get("seed", 42),
                       max_length=args.get("max_seq_length", 1024), bf16=False, fp16=False,
                       pad_token=tokenizer.pad_token, eos_token=tokenizer.eos_token,
                       # What the fabric's trainer passes where trl's defaults differ
                       # (SFTConfig checkpoints gradients by default; python/flowmesh_train
                       # follows the published executor's arguments).
                       gradient_checkpointing=False, optim="adamw_torch", lr_scheduler_type="linear",
                       warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0)
    clock = Clock()
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, callbacks=[clock])
    trainer.train()
    seconds = clock.ended - clock.began
    print(json.dumps({"tokens_per_second": clock.tokens / seconds, "train_seconds": seconds,
                      "last_loss": clock.losses[-1], "tokens": clock.tokens}))


if __name__ == "__main__":
    main()
