// llama_cpp_tokens.mjs — llama.cpp's tokenizer (through node-llama-cpp's prebuilt CPU
// binary from the npm registry) against memtrade's on the same GGUF file: for every text
// of a fixture's expected.json, llama.cpp's ids (model.tokenize, special tokens parsed,
// no BOS) must equal memtrade's (mt-gguf-dump --tokenize) exactly. Prints one line per
// text, then memtrade's ids of every text on lines "ids N ..." for the logits check.
// Usage: MT_NPM_DIR=DIR node llama_cpp_tokens.mjs FILE.gguf EXPECTED.json MT_GGUF_DUMP
import { createRequire } from "module";
import { execFileSync } from "child_process";
import fs from "fs";
const require = createRequire(process.env.MT_NPM_DIR + "/");
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));
const [file, expected, dump] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: file });
const texts = JSON.parse(fs.readFileSync(expected, "utf8")).texts.map((t) => t.text);
const name = file.split("/").pop();
let fail = 0;
const lines = [];
texts.forEach((text, i) => {
  const mine = execFileSync(dump, ["--tokenize", file, text], { encoding: "utf8" }).trim().split(" ").map(Number);
  const theirs = Array.from(model.tokenize(text, true), Number);
  let at = 0;
  while (at < mine.length && mine[at] === theirs[at]) at++;
  const same = at === mine.length && mine.length === theirs.length;
  if (!same) fail = 1;
  console.log(`${same ? "same" : "FAIL"}: ${name} text ${i}: ${mine.length} ids memtrade, ${theirs.length} llama.cpp` +
    (same ? "" : `; first difference at ${at}: memtrade ${mine.slice(at, at + 6).join(" ")} / llama.cpp ${theirs.slice(at, at + 6).join(" ")}`));
  lines.push(`ids ${i} ${mine.join(" ")}`);
});
for (const l of lines) console.log(l);
process.exit(fail);
