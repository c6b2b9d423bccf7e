"""python -m flowmesh_train.gguf OUT.gguf --base MODEL_DIR [--adapter LORA_DIR] --llama-cpp DIR

Writes a GGUF the embedded llama.cpp engine loads: the transformers model MODEL_DIR, with
the peft LoRA adapter LORA_DIR merged into its weights when given, converted by
convert_hf_to_gguf.py of the pinned llama.cpp tree (scripts/fetch-llama) with its own gguf-py.
Prints the output path. The output is written beside OUT and renamed into place, so a reader
never sees half a file."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile


def merged_model(base, adapter, folder):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32)
    model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(adapter if os.path.exists(os.path.join(adapter, "tokenizer_config.json"))
                                  else base).save_pretrained(folder)
    return folder


def convert(out, base, adapter, llama_cpp, outtype="f32"):
    script = os.path.join(llama_cpp, "convert_hf_to_gguf.py")
    if not os.path.isfile(script):
        raise SystemExit(f"no convert_hf_to_gguf.py in {llama_cpp}")
    work = tempfile.mkdtemp(prefix="flowmesh-gguf-", dir=os.path.dirname(os.path.abspath(out)))
    try:
        source = merged_model(base, adapter, os.path.join(work, "merged")) if adapter else base
        partial = os.path.join(work, "model.gguf")
        subprocess.run([sys.executable, script, "--outfile", partial, "--outtype", outtype, source],
                       check=True, stdout=sys.stderr)
        os.replace(partial, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--base", required=True)
    parser.add_argument("--adapter")
    parser.add_argument("--llama-cpp", required=True)
    parser.add_argument("--outtype", default="f32", choices=("f32", "f16", "bf16", "q8_0"))
    a = parser.parse_args()
    print(convert(a.out, a.base, a.adapter, a.llama_cpp, a.outtype))


if __name__ == "__main__":
    main()
