"""python -m flowmesh_train.gguf OUT.gguf --base MODEL_DIR [--adapter LORA_DIR | --lora LORA_DIR]
                                --llama-cpp DIR

Writes a GGUF the embedded llama.cpp engine loads, with the converters of the pinned
llama.cpp tree (scripts/fetch-llama) and its own gguf-py:
  --base only        the transformers model MODEL_DIR (convert_hf_to_gguf.py);
  --adapter LORA_DIR that model with the peft LoRA adapter merged into its weights;
  --lora LORA_DIR    the peft LoRA adapter alone, as a llama.cpp adapter GGUF for MODEL_DIR's
                     conversion (convert_lora_to_gguf.py), which the engine applies per request.
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


def convert(out, base, adapter, llama_cpp, outtype="f32", lora=None):
    script = os.path.join(llama_cpp, "convert_lora_to_gguf.py" if lora else "convert_hf_to_gguf.py")
    if not os.path.isfile(script):
        raise SystemExit(f"no {os.path.basename(script)} in {llama_cpp}")
    work = tempfile.mkdtemp(prefix="flowmesh-gguf-", dir=os.path.dirname(os.path.abspath(out)))
    try:
        partial = os.path.join(work, "model.gguf")
        if lora:
            command = [sys.executable, script, "--outfile", partial, "--outtype", outtype, "--base", base, lora]
        else:
            source = merged_model(base, adapter, os.path.join(work, "merged")) if adapter else base
            command = [sys.executable, script, "--outfile", partial, "--outtype", outtype, source]
        subprocess.run(command, check=True, stdout=sys.stderr)
        os.replace(partial, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--base", required=True)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--adapter", help="merge this peft LoRA adapter into the model")
    group.add_argument("--lora", help="convert this peft LoRA adapter alone")
    parser.add_argument("--llama-cpp", required=True)
    parser.add_argument("--outtype", default="f32", choices=("f32", "f16", "bf16", "q8_0"))
    a = parser.parse_args()
    print(convert(a.out, a.base, a.adapter, a.llama_cpp, a.outtype, a.lora))


if __name__ == "__main__":
    main()
