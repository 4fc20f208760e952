// tokenizers_npm_ids.mjs — Hugging Face's own tokenizers library (the Rust crate, through
// the npm registry's @anush008/tokenizers binding) on a tokenizer.json memtrade wrote: the
// ids of every text of a texts file, and memtrade's (mt-gguf-dump --tokenize on the
// folder) must be the same, exactly. Prints one line per text; exits 1 on a difference.
// Usage: MT_NPM_DIR=DIR node tokenizers_npm_ids.mjs FOLDER TEXTS.json MT_GGUF_DUMP
//   TEXTS.json: {"texts": [{"text": ...}, ...]} (a fixture's expected.json)
import { createRequire } from "module";
import { execFileSync } from "child_process";
import fs from "fs";
const require = createRequire(process.env.MT_NPM_DIR + "/");
const { Tokenizer } = require("@anush008/tokenizers");
const [folder, textsFile, dump] = process.argv.slice(2);
const tok = Tokenizer.fromFile(folder + "/tokenizer.json");
const texts = JSON.parse(fs.readFileSync(textsFile, "utf8")).texts.map((t) => t.text);
const name = folder.split("/").pop();
let fail = 0;
for (const [i, text] of texts.entries()) {
  const mine = execFileSync(dump, ["--tokenize", folder, text], { encoding: "utf8" }).trim();
  const enc = await tok.encode(text, null, { addSpecialTokens: false });
  const theirs = enc.getIds().join(" ");
  const same = mine === theirs;
  if (!same) fail = 1;
  console.log(`${same ? "same" : "FAIL"}: ${name} text ${i}: ${mine.split(" ").filter((x) => x).length} ids` +
    (same ? "" : ` memtrade [${mine}] tokenizers [${theirs}]`));
}
process.exit(fail);
