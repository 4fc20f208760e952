// llama_cpp_logits.mjs — llama.cpp's logits for a GGUF file (through node-llama-cpp's
// prebuilt CPU binary from the npm registry), compared with memtrade's logits on the same
// file and the same token ids (mt-gguf-dump --logits): prints the largest absolute
// difference relative to the largest logit, and exits 1 when it is above the limit.
// Usage: MT_NPM_DIR=DIR node llama_cpp_logits.mjs FILE.gguf MEMTRADE_LOGITS.f32 LIMIT ID...
// (MT_LABEL=TEXT adds TEXT to the line; MT_DEBUG=1 prints the largest difference at each
// position first)
// The KV cache is kept in f32 and flash attention off, so that f32 weights run in f32 end
// to end (llama.cpp's defaults, an f16 cache, differ by ~1e-4 by themselves).
import { createRequire } from "module";
import fs from "fs";
const require = createRequire(process.env.MT_NPM_DIR + "/");
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));
const [file, mine, limit, ...ids] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: file });
const toks = ids.map(Number);
// room for one more token: a sequence that fills its context is shifted before its last
// token is evaluated (node-llama-cpp), which changes that position's logits
const n_ctx = Math.ceil((toks.length + 1) / 64) * 64;
const ctx = await model.createContext({ contextSize: n_ctx, batchSize: n_ctx, threads: 2, flashAttention: false,
  experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" });
const res = await ctx.getSequence().controlledEvaluate(toks.map((t) => [t, { generateNext: { logits: true } }]));
const m = new Float32Array(new Uint8Array(fs.readFileSync(mine)).buffer);
const V = m.length / toks.length;
let maxDiff = 0, maxLogit = 0, n = 0;
const posDiff = new Float64Array(toks.length);
for (let i = 0; i < toks.length; i++)
  for (const [t, v] of res[i].next.logits) {
    posDiff[i] = Math.max(posDiff[i], Math.abs(v - m[i * V + t]));
    maxLogit = Math.max(maxLogit, Math.abs(m[i * V + t]));
    n++;
  }
for (const d of posDiff) maxDiff = Math.max(maxDiff, d);
const rel = maxDiff / maxLogit;
if (process.env.MT_DEBUG) console.log(Array.from(posDiff, (d) => d.toExponential(1)).join(" "));
const ok = n === toks.length * V && rel <= Number(limit);
const label = process.env.MT_LABEL ? ` ${process.env.MT_LABEL}` : "";
console.log(`${ok ? "same" : "FAIL"}: ${file.split("/").pop()}${label}: ${n} logits, max |diff| ${maxDiff.toExponential(2)}, ` +
  `max |logit| ${maxLogit.toFixed(3)}, relative ${rel.toExponential(2)} (limit ${limit})`);
process.exit(ok ? 0 : 1);
