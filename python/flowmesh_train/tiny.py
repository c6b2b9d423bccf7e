"""python -m flowmesh_train.tiny OUT_DIR --corpus FILE [--seed N]: writes a tiny random
llama (2 layers, hidden 64) with a SentencePiece tokenizer trained on FILE's lines, for
tests and benchmarks that may not fetch a model. The same arguments give the same files.

--kind diffusion writes a tiny random Stable Diffusion pipeline instead (a UNet, a VAE that
halves the image, a 2-layer CLIP text encoder and a byte-level CLIP tokenizer: diffusers'
folder layout with model_index.json); --kind vit a tiny random ViT image classifier (32x32
images, 8x8 patches) with its image processor. Neither needs --corpus."""
import argparse
import json
import os


def build(out_dir, corpus_lines, seed=0, layers=2, hidden=64, vocab=320, context=256):
    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer

    os.makedirs(out_dir, exist_ok=True)
    prefix = os.path.join(out_dir, "tokenizer")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines), model_prefix=prefix, vocab_size=vocab,
        model_type="bpe", byte_fallback=True, character_coverage=1.0, hard_vocab_limit=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2,
        split_digits=True, add_dummy_prefix=True, normalization_rule_name="identity")
    os.remove(prefix + ".vocab")
    tokenizer = LlamaTokenizer(vocab_file=prefix + ".model", legacy=False, add_bos_token=True,
                               add_eos_token=False)
    tokenizer.save_pretrained(out_dir)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden,
                         intermediate_size=hidden * 2, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=context, rms_norm_eps=1e-5, bos_token_id=1,
                         eos_token_id=2, tie_word_embeddings=False,
                         # Wider than transformers' 0.02: the frozen output layer of a LoRA
                         # run must be able to reach confident logits.
                         initializer_range=0.25)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def _byte_level_clip_tokenizer(out_dir):
    """A CLIP tokenizer without merges: every byte is one token (its byte-level unicode
    character, with and without the end-of-word mark), plus the two special tokens."""
    from transformers import CLIPTokenizer
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab = {}
    for symbol in symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab.setdefault(symbol, len(vocab))
    os.makedirs(out_dir, exist_ok=True)
    vocab_file = os.path.join(out_dir, "vocab.json")
    merges_file = os.path.join(out_dir, "merges.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(merges_file, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
    tokenizer = CLIPTokenizer(vocab_file, merges_file, model_max_length=77)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def build_diffusion(out_dir, seed=0):
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    os.makedirs(out_dir, exist_ok=True)
    tokenizer = _byte_level_clip_tokenizer(os.path.join(out_dir, "tokenizer"))
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8, cross_attention_dim=32,
        attention_head_dim=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
        norm_num_groups=8, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   unet=unet, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def build_vit(out_dir, seed=0, image_size=32):
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(seed)
    config = ViTConfig(image_size=image_size, patch_size=8, num_channels=3, hidden_size=32,
                       num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                       num_labels=2)
    ViTForImageClassification(config).save_pretrained(out_dir, safe_serialization=True)
    ViTImageProcessor(do_resize=True, size={"height": image_size, "width": image_size},
                      image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]).save_pretrained(out_dir)
    return out_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--kind", choices=("llama", "diffusion", "vit"), default="llama")
    parser.add_argument("--corpus", help="text file, one sentence a line (llama)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    a = parser.parse_args()
    if a.kind == "diffusion":
        print(build_diffusion(a.out_dir, a.seed))
        return
    if a.kind == "vit":
        print(build_vit(a.out_dir, a.seed))
        return
    if not a.corpus:
        parser.error("--corpus is required for a llama")
    with open(a.corpus, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    print(build(a.out_dir, lines, a.seed, a.layers, a.hidden))


if __name__ == "__main__":
    main()
