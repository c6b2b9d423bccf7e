"""diffusion (and omni_text2image on a diffusers model): text → image with a diffusers
text-to-image pipeline (AutoPipelineForText2Image) read from a local folder or the local
Hugging Face cache. One PNG per prompt and image, `images/image_<n>.png` under the output
folder (the worker keeps them in the content store); a seeded run writes the same bytes."""
import os
import time

from .protocol import BridgeError, invalid
from . import spec as specs

DTYPES = ("auto", "fp16", "bf16", "fp32")
MAX_SIDE = 4096
MAX_IMAGES = 64  # prompts × num_images_per_prompt


def options(spec, prompts):
    """The generation options of spec.inference, checked before torch is imported."""
    inf = specs.section(spec, "inference")
    o = {
        "num_inference_steps": specs.integer("inference", inf, "num_inference_steps", 50, 1, 1000),
        "guidance_scale": specs.number("inference", inf, "guidance_scale", 7.5, 0.0, 100.0),
        "height": specs.integer("inference", inf, "height", None, 8, MAX_SIDE),
        "width": specs.integer("inference", inf, "width", None, 8, MAX_SIDE),
        "num_images_per_prompt": specs.integer("inference", inf, "num_images_per_prompt", 1, 1, MAX_IMAGES),
        "seed": specs.integer("inference", inf, "seed", None, 0, 2**32 - 1),
        "negative_prompt": inf.get("negative_prompt"),
        "system_prompt": inf.get("system_prompt"),
    }
    for side in ("height", "width"):
        if o[side] is not None and o[side] % 8:
            raise invalid(f"inference.{side} must be a multiple of 8, got {o[side]}")
    if o["system_prompt"] is not None and not isinstance(o["system_prompt"], str):
        raise invalid("inference.system_prompt must be a string")
    negative = o["negative_prompt"]
    if negative is None or isinstance(negative, str):
        o["negative_prompt"] = [negative or ""] * len(prompts)
    elif (isinstance(negative, list) and len(negative) == len(prompts)
          and all(isinstance(n, str) for n in negative)):
        o["negative_prompt"] = list(negative)
    else:
        raise invalid(f"inference.negative_prompt must be a string or one string per prompt "
                      f"({len(prompts)})")
    if len(prompts) * o["num_images_per_prompt"] > MAX_IMAGES:
        raise invalid(f"{len(prompts)} prompts × inference.num_images_per_prompt "
                      f"{o['num_images_per_prompt']} is more than {MAX_IMAGES} images in one task")
    config = specs.section(spec, "model").get("diffusers") or {}
    if not isinstance(config, dict):
        raise invalid("model.diffusers must be a mapping")
    o["dtype"] = str(config.get("dtype", "auto")).lower()
    if o["dtype"] not in DTYPES:
        raise invalid(f"model.diffusers.dtype must be one of {', '.join(DTYPES)}, got {o['dtype']!r}")
    if config.get("quantization"):
        raise invalid("model.diffusers.quantization is not supported here (bitsandbytes is not "
                      "installed)")
    o["use_safetensors"] = bool(config.get("use_safetensors", True))
    return o


def pipeline_location(spec, fallback=None):
    """(identifier, revision) of the diffusers pipeline: model.source.identifier, else
    `fallback`. A local folder must hold model_index.json."""
    model = specs.section(spec, "model")
    source = model.get("source") or {}
    if isinstance(source, str):
        source = {"identifier": source}
    identifier = source.get("identifier") or source.get("path") or fallback
    if not identifier:
        raise invalid("model.source.identifier is required (a diffusers pipeline folder or a "
                      "Hugging Face identifier in the local cache)")
    identifier = str(identifier)
    if str(source.get("type", "")).lower() == "local" or identifier.startswith("/"):
        if not os.path.isfile(os.path.join(identifier, "model_index.json")):
            raise invalid(f"model.source.identifier: {identifier} is not a diffusers pipeline "
                          "folder (no model_index.json)")
    return identifier, source.get("revision")


def is_local_pipeline(identifier):
    """A diffusers pipeline this worker has: a folder, or a snapshot in the local Hugging
    Face cache (the venv has no hub access)."""
    if os.path.isfile(os.path.join(identifier, "model_index.json")):
        return True
    if identifier.startswith("/") or "/" not in identifier:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(identifier, "model_index.json")
    return isinstance(found, str)


def load_pipeline(identifier, revision, o, channel):
    import torch
    from diffusers import AutoPipelineForText2Image

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32,
             "auto": torch.bfloat16 if device == "cuda" else torch.float32}[o["dtype"]]
    kwargs = {"torch_dtype": dtype, "use_safetensors": o["use_safetensors"]}
    if revision and not os.path.isdir(identifier):
        kwargs["revision"] = revision
    channel.log(f"loading diffusers pipeline {identifier} on {device}")
    try:
        pipe = AutoPipelineForText2Image.from_pretrained(identifier, **kwargs)
    except (OSError, EnvironmentError) as exc:
        raise BridgeError("failed_precondition",
                          f"cannot load diffusers pipeline {identifier}: {exc}") from exc
    except ValueError as exc:  # not a text-to-image pipeline
        raise invalid(f"model.source.identifier: {identifier} is not a text-to-image "
                      f"pipeline: {exc}") from exc
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe, device


def _embeddings(pipe, device, prompts, o):
    """prompt_embeds / negative_prompt_embeds (and pooled ones where the pipeline has them),
    with the system prompt's embeddings put in front of every prompt's, as the published
    executor does."""
    import inspect

    import torch

    def encode(prompt, negative, count):
        kwargs = {"prompt": prompt, "negative_prompt": negative, "device": device,
                  "num_images_per_prompt": count}
        if "do_classifier_free_guidance" in inspect.signature(pipe.encode_prompt).parameters:
            kwargs["do_classifier_free_guidance"] = True
        return pipe.encode_prompt(**kwargs)

    count = o["num_images_per_prompt"]
    encoded = encode(prompts, o["negative_prompt"], count)
    positive, negative = encoded[0], encoded[1]
    extra = {}
    if len(encoded) > 3:
        extra = {"pooled_prompt_embeds": encoded[2], "negative_pooled_prompt_embeds": encoded[3]}
    if o["system_prompt"]:
        system = encode(o["system_prompt"], "", 1)
        rows = positive.shape[0]
        positive = torch.cat([system[0].repeat(rows, 1, 1), positive], dim=1)
        negative = torch.cat([system[1].repeat(rows, 1, 1), negative], dim=1)
    return {"prompt_embeds": positive, "negative_prompt_embeds": negative, **extra}


def generate(pipe, device, prompts, o, channel):
    """PIL images, prompts × num_images_per_prompt, in prompt order."""
    import torch

    generator = None
    if o["seed"] is not None:
        generator = torch.Generator(device="cpu").manual_seed(o["seed"])
    kwargs = {"num_inference_steps": o["num_inference_steps"], "guidance_scale": o["guidance_scale"],
              "generator": generator}
    if o["height"] is not None:
        kwargs["height"] = o["height"]
    if o["width"] is not None:
        kwargs["width"] = o["width"]
    started = time.monotonic()

    def on_step(_pipe, step, _timestep, callback_kwargs):
        channel.send("progress", step=step + 1, max_steps=o["num_inference_steps"],
                     elapsed_seconds=round(time.monotonic() - started, 3))
        return callback_kwargs

    try:
        kwargs.update(_embeddings(pipe, device, prompts, o))
    except (AttributeError, TypeError):  # a pipeline without encode_prompt: plain prompts
        kwargs.update(prompt=prompts, negative_prompt=o["negative_prompt"],
                      num_images_per_prompt=o["num_images_per_prompt"])
    try:
        images = pipe(callback_on_step_end=on_step, **kwargs).images
    except ValueError as exc:  # sizes or options this pipeline refuses
        raise invalid(f"inference: {exc}") from exc
    expected = len(prompts) * o["num_images_per_prompt"]
    if len(images) != expected:
        raise BridgeError("internal", f"the pipeline made {len(images)} images for {expected}")
    return images


def save_png(image, path):
    """PNG bytes that depend on the pixels only (no timestamps), so seeded runs match."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, format="PNG", optimize=False)


def run(task_type, spec, channel, output_dir):
    prompts = specs.prompts(spec)
    o = options(spec, prompts)
    identifier, revision = pipeline_location(spec)
    started = time.monotonic()
    pipe, device = load_pipeline(identifier, revision, o, channel)
    channel.log(f"generating {len(prompts) * o['num_images_per_prompt']} images, "
                f"{o['num_inference_steps']} steps")
    images = generate(pipe, device, prompts, o, channel)
    refs = []
    for index, image in enumerate(images):
        name = f"images/image_{index}.png"
        save_png(image, os.path.join(output_dir, name))
        refs.append({"path": name, "prompt": prompts[index // o["num_images_per_prompt"]],
                     "width": image.width, "height": image.height})
    return {"ok": True, "model": identifier, "images": refs, "seed": o["seed"],
            "num_inference_steps": o["num_inference_steps"],
            "guidance_scale": o["guidance_scale"],
            "generation_time_seconds": round(time.monotonic() - started, 3)}
