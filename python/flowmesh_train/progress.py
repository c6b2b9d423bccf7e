"""Reports a transformers Trainer's progress over the bridge: a `progress` message per
logged step (throttled), a human log line beside it, and a `checkpoint` message per save."""
import math
import os
import time

from transformers import TrainerCallback

MIN_INTERVAL_S = 1.0  # progress messages at most this often, except the first and the last


def _finite(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class ProgressReporter(TrainerCallback):
    def __init__(self, channel, output_dir, loss_key="loss", extra=None):
        self.channel = channel
        self.output_dir = output_dir
        self.loss_key = loss_key  # the log entry read as the loss (ppo: loss/policy_avg)
        self.extra = extra or {}  # log key → progress field (ppo: objective/scores → reward)
        self.histories = {name: [] for name in self.extra.values()}
        self.losses = []  # (step, loss) of every logged step
        self.began = None
        self.last_sent = 0.0
        self.last = {}
        self.tokens_per_second = None
        self.unsent = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.began = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        loss = _finite(logs.get(self.loss_key))
        if loss is None:  # the closing summary (train_runtime, ...): nothing new to report
            return
        if loss is not None:
            self.losses.append((state.global_step, loss))
        elapsed = time.monotonic() - (self.began or time.monotonic())
        tokens = getattr(state, "num_input_tokens_seen", 0) or 0
        if tokens and elapsed > 0:
            self.tokens_per_second = tokens / elapsed
        step, max_steps = state.global_step, state.max_steps
        eta = (max_steps - step) * elapsed / step if step and max_steps else None
        self.unsent = True
        self.last = {
            "step": step,
            "max_steps": max_steps,
            "epoch": _finite(state.epoch),
            "loss": loss if loss is not None else (self.losses[-1][1] if self.losses else None),
            "learning_rate": _finite(logs.get("learning_rate")),
            "tokens": tokens or None,
            "tokens_per_second": _finite(self.tokens_per_second),
            "elapsed_seconds": round(elapsed, 3),
            "eta_seconds": round(eta, 3) if eta is not None else None,
        }
        for key, name in self.extra.items():
            if _finite(logs.get(key)) is not None:
                self.last[name] = _finite(logs[key])
                self.histories[name].append((state.global_step, _finite(logs[key])))
        for key in ("rewards/accuracies", "rewards/margins"):
            if _finite(logs.get(key)) is not None:
                self.last[key.replace("/", "_")] = _finite(logs[key])
        now = time.monotonic()
        if loss is not None and (now - self.last_sent >= MIN_INTERVAL_S or step >= max_steps
                                 or len(self.losses) == 1):
            self.flush()

    def flush(self):
        if not self.last or not self.unsent:
            return
        self.unsent = False
        self.last_sent = time.monotonic()
        self.channel.send("progress", **{k: v for k, v in self.last.items() if v is not None})
        p = self.last
        text = f"step {p['step']}/{p['max_steps']}"
        if p.get("loss") is not None:
            text += f" loss {p['loss']:.4f}"
        if p.get("tokens_per_second"):
            text += f" {p['tokens_per_second']:.0f} tokens/s"
        if p.get("eta_seconds") is not None:
            text += f" eta {p['eta_seconds']:.0f}s"
        self.channel.log(text)

    def on_save(self, args, state, control, **kwargs):
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if os.path.isdir(folder):
            self.channel.send("checkpoint", step=state.global_step,
                              path=os.path.relpath(folder, self.output_dir))

    def history(self, name):
        """[[step, value], ...] of an `extra` field (the last 1000)."""
        return [[s, round(v, 6)] for s, v in self.histories.get(name, [])[-1000:]]

    def summary(self):
        losses = [loss for _, loss in self.losses]
        return {
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "min_loss": min(losses) if losses else None,
            "tokens_per_second": _finite(self.tokens_per_second),
            "loss_history": [[s, round(l, 6)] for s, l in self.losses[-1000:]],
        }
