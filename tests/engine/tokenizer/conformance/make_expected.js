// Writes expected/<name>.json: for every case in cases.json, the ids the
// Hugging Face `tokenizers` library (Rust, through the @anush008/tokenizers
// Node binding) produces with and without special tokens, and its decodes.
// Run through make_expected.sh, which installs the packages.
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('@anush008/tokenizers');

const [, , tokenizersDir, outDir] = process.argv;
const here = __dirname;
const cases = JSON.parse(fs.readFileSync(path.join(here, 'cases.json'), 'utf8'));
const bindingVersion = require('@anush008/tokenizers/package.json').version;

(async () => {
  for (const file of fs.readdirSync(tokenizersDir).filter((f) => f.endsWith('.json')).sort()) {
    const name = path.basename(file, '.json');
    const tok = Tokenizer.fromFile(path.join(tokenizersDir, file));
    const out = [];
    for (const text of cases) {
      const ids = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
      const idsNoSpecial = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
      out.push({
        text,
        ids,
        ids_no_special: idsNoSpecial,
        decoded: await tok.decode(ids, false),
        decoded_skip_special: await tok.decode(ids, true),
      });
    }
    const doc = {
      tokenizer: file,
      reference: `HF tokenizers (Rust) via @anush008/tokenizers ${bindingVersion}`,
      cases: out,
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(doc, null, 0) + '\n');
    console.log(`${name}: ${out.length} cases`);
  }
})();
