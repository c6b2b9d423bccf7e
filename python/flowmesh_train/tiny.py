"""python -m flowmesh_train.tiny OUT_DIR --corpus FILE [--seed N]: writes a tiny random
llama (2 layers, hidden 64) with a SentencePiece tokenizer trained on FILE's lines, for
tests and benchmarks that may not fetch a model. The same arguments give the same files."""
import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--corpus", required=True, help="text file, one sentence a line")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    a = parser.parse_args()
    with open(a.corpus, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    print(build(a.out_dir, lines, a.seed, a.layers, a.hidden))


if __name__ == "__main__":
    main()
