"""Runs llama.cpp's own convert_hf_to_gguf.py (from the node-llama-cpp package's source) on a model
written by `mnemo model new`, under /usr/bin/python3, which has torch and numpy but no
`transformers` (and no PyPI to install it from).

The converter imports `transformers` for two things only:
- AutoConfig, to read config.json: the stub raises, and the converter falls back to reading
  config.json itself (its own documented fallback);
- AutoTokenizer, to list the vocabulary of a byte-level BPE tokenizer.json (Mnemo's is one, the
  `_set_vocab_gpt2` path): the stub reads vocab and added tokens from tokenizer.json.
It imports `sentencepiece` before looking for a tokenizer.model (there is none; it then goes on
to tokenizer.json), so an empty stub of that module is installed too, and a silent `tqdm` for gguf-py's progress bar. It also hashes the tokenizer's encoding of a test string to name the pre-tokenizer; the stub cannot
encode, so the name is set from tokenizer.json's pre-tokenizer regex instead: Mnemo's is Llama 3's
verbatim, which llama.cpp calls "llama-bpe" (anything else is refused). Merges, special token ids
and the tensors (including the Q/K permutation for llama.cpp's RoPE layout) are the converter's
own code, unchanged.

usage: /usr/bin/python3 convert.py LLAMA_CPP_SRC MODEL_DIR --outfile F.gguf --outtype bf16|q8_0|f16|f32
"""
import json
import pathlib
import sys
import types

# Llama 3's pre-tokenizer split (tokenizer.json of Meta-Llama-3-8B), which llama.cpp implements as
# LLAMA_VOCAB_PRE_TYPE_LLAMA3 under the name "llama-bpe".
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def pre_tokenizer_name(tokenizer_json):
    """llama.cpp's name for the pre-tokenizer of a tokenizer.json dict, or raise."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre])
    for p in parts:
        if p.get("type") == "Split" and p.get("pattern", {}).get("Regex") == LLAMA3_SPLIT:
            return "llama-bpe"
    raise ValueError("tokenizer.json's pre-tokenizer is not Llama 3's; convert.py only knows that one")


class _AddedToken:
    def __init__(self, t):
        self.content = t["content"]
        self.special = bool(t.get("special", False))
        self.normalized = bool(t.get("normalized", False))


class StubTokenizer:
    """What convert_hf_to_gguf's get_vocab_base reads from a fast tokenizer, from tokenizer.json."""

    def __init__(self, model_dir):
        j = json.loads((pathlib.Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8"))
        self.pre_name = pre_tokenizer_name(j)
        self.vocab = dict(j["model"]["vocab"])
        self.added_tokens_decoder = {}
        for t in j.get("added_tokens", []):
            self.vocab[t["content"]] = t["id"]
            self.added_tokens_decoder[t["id"]] = _AddedToken(t)
        self.is_fast = True

    def get_vocab(self):
        return dict(self.vocab)

    def get_added_vocab(self):
        return {t.content: i for i, t in self.added_tokens_decoder.items()}

    # Only used to round-trip an added token (get_vocab_base normalises them): an added token
    # encodes to itself.
    def encode(self, text, add_special_tokens=True):
        if text in self.vocab:
            return [self.vocab[text]]
        raise NotImplementedError("the stub tokenizer encodes added tokens only")

    def decode(self, ids):
        rev = {i: s for s, i in self.vocab.items()}
        return "".join(rev[i] for i in ids)


def install_stub():
    class AutoConfig:
        @staticmethod
        def from_pretrained(*_a, **_k):
            raise RuntimeError("transformers is not installed (stub): read config.json")

    class AutoTokenizer:
        @staticmethod
        def from_pretrained(model_dir, *_a, **_k):
            return StubTokenizer(model_dir)

    # torch 1.13 (this machine's) predates the float8 dtypes the converter names in its dtype
    # tables; Mnemo's models hold none, so unique placeholders keep those tables importable.
    import torch
    for name in ("float8_e4m3fn", "float8_e5m2"):
        if not hasattr(torch, name):
            setattr(torch, name, type(name, (), {})())

    mod = types.ModuleType("transformers")
    mod.AutoConfig = AutoConfig
    mod.AutoTokenizer = AutoTokenizer
    sys.modules["transformers"] = mod

    # The Llama converter tries a SentencePiece tokenizer.model first and imports sentencepiece
    # before it looks for the file; there is no such file, so it falls through to tokenizer.json.
    if "sentencepiece" not in sys.modules:
        spm = types.ModuleType("sentencepiece")
        spm.SentencePieceProcessor = None
        sys.modules["sentencepiece"] = spm

    # gguf-py's writer draws a progress bar with tqdm: a silent one.
    if "tqdm" not in sys.modules:
        class Bar:
            def __init__(self, *_a, **_k):
                pass

            def __getattr__(self, _name):
                return lambda *_a, **_k: None

        tq = types.ModuleType("tqdm")
        tq.tqdm = Bar
        sys.modules["tqdm"] = tq


def main(argv):
    src = pathlib.Path(argv[0]).resolve()
    install_stub()
    sys.path[:0] = [str(src / "gguf-py"), str(src)]
    import convert_hf_to_gguf  # noqa: E402  (the package's converter, after the stub)
    import conversion.base as base  # noqa: E402

    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: tokenizer.pre_name
    sys.argv = ["convert_hf_to_gguf.py"] + argv[1:]
    convert_hf_to_gguf.main()


if __name__ == "__main__":
    main(sys.argv[1:])
