"""omni_text2image, omni_text2speech, omni_text2audio, omni_text2general, omni_text2video.

The published omni executors run their models on vllm-omni (a GPU serving stack), which
this worker does not embed. What runs here:
- omni_text2image on a diffusers text-to-image pipeline the worker has (a local folder with
  model_index.json, or a snapshot in the local Hugging Face cache): the diffusion trainer's
  generation, saved where the published executor saves (artifacts-relative `save_path`,
  default generated_image[_<n>].<output_format>);
- everything else: a failed_precondition that names the model, the task type and what
  would be needed, raised after the spec is read and before any model is loaded."""
import os

from .protocol import BridgeError, invalid
from . import diffusion
from . import spec as specs

# The published defaults (model.source.identifier, else omni.model, else these).
DEFAULT_MODELS = {
    "omni_text2image": "Qwen/Qwen-Image-2512",
    "omni_text2speech": "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice",
    "omni_text2audio": "stabilityai/stable-audio-open-1.0",
    "omni_text2general": "Qwen/Qwen2.5-Omni-7B",
    "omni_text2video": "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
}
FORMATS = ("png", "jpg", "jpeg", "webp", "bmp")


def config(spec, task_type):
    """spec.omni merged with the task type's own section, as published."""
    merged = {}
    for key in ("omni", task_type):
        value = spec.get(key)
        if value is not None and not isinstance(value, dict):
            raise invalid(f"{key} must be a mapping")
        merged.update(value or {})
    return merged


def model_identifier(spec, cfg, task_type):
    source = specs.section(spec, "model").get("source") or {}
    if isinstance(source, str):
        source = {"identifier": source}
    return str(source.get("identifier") or cfg.get("model") or DEFAULT_MODELS[task_type]).strip()


def save_path(cfg, output_dir, index, multi, ext):
    """Where image `index` goes: cfg.save_path (relative, `{index}` → 1-based index) or
    generated_image[_<n>].<ext>, kept under the output folder."""
    raw = cfg.get("save_path")
    if raw:
        text = str(raw)
        if os.path.isabs(text):
            raise invalid(f"omni.save_path must be relative, got {raw}")
        if "{index}" in text:
            text = text.replace("{index}", str(index + 1))
        elif multi and index > 0:
            stem, suffix = os.path.splitext(text)
            text = f"{stem}_{index + 1}{suffix}"
        path = os.path.normpath(os.path.join(output_dir, text))
        if not path.startswith(os.path.normpath(output_dir) + os.sep):
            raise invalid(f"omni.save_path {raw} leaves the output folder")
        return path
    name = "generated_image" if not multi else f"generated_image_{index + 1}"
    return os.path.join(output_dir, f"{name}.{ext}")


def run(task_type, spec, channel, output_dir):
    prompts = specs.prompts(spec)
    cfg = config(spec, task_type)
    identifier = model_identifier(spec, cfg, task_type)
    if task_type != "omni_text2image" or not diffusion.is_local_pipeline(identifier):
        if task_type == "omni_text2image":
            needs = ("a diffusers text-to-image pipeline the worker has (a local folder with "
                     "model_index.json, or a snapshot in its Hugging Face cache); the published "
                     "executor's vllm-omni is not embedded")
        else:
            needs = f"{task_type} needs vllm-omni (a GPU serving stack), which flowmesh does not embed"
        raise BridgeError("failed_precondition",
                          f"no backend for model {identifier!r} on this worker: {needs}")
    fmt = str(cfg.get("output_format") or "png").lower()
    if fmt not in FORMATS:
        raise invalid(f"omni.output_format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    o = diffusion.options({**spec, "inference": {**specs.section(spec, "inference"),
                                                 **{k: cfg[k] for k in cfg if k in (
                                                     "num_inference_steps", "guidance_scale",
                                                     "height", "width", "seed",
                                                     "negative_prompt")}}}, prompts)
    o["num_images_per_prompt"] = 1
    pipe, device = diffusion.load_pipeline(identifier, None, o, channel)
    images = diffusion.generate(pipe, device, prompts, o, channel)
    items = []
    for index, (prompt, image) in enumerate(zip(prompts, images)):
        path = save_path(cfg, output_dir, index, len(prompts) > 1, fmt)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        image.save(path, format={"jpg": "JPEG"}.get(fmt, fmt.upper()))
        items.append({"index": index, "prompt": prompt,
                      "image": {"path": os.path.relpath(path, output_dir)}})
    return {"ok": True, "executor": task_type, "mode": "image", "model": identifier,
            "image": items[0]["image"] if items else None, "items": items}
