"""Loading the model and tokenizer a task names, on the GPU when there is one."""
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from .protocol import BridgeError
from .spec import model_location


def device_kind():
    return "cuda" if torch.cuda.is_available() else "cpu"


def load(spec, channel, dtype=None):
    identifier, revision, trust = model_location(spec)
    kwargs = {"trust_remote_code": trust}
    if revision and not identifier.startswith("/"):
        kwargs["revision"] = revision
    channel.log(f"loading {identifier} on {device_kind()}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(identifier, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(identifier, torch_dtype=dtype or torch.float32,
                                                     **kwargs)
    except OSError as exc:  # not found locally and no hub access
        raise BridgeError("failed_precondition", f"cannot load model {identifier}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    model.config.use_cache = False
    return identifier, model, tokenizer
