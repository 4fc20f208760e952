// gguf_npm_dump.mjs — what Hugging Face's @huggingface/gguf (an independent GGUF reader
// from the npm registry) sees in a file, in mt-gguf-dump's canonical lines (see
// workloads/transformer/import/gguf_dump.c), for scripts/check_gguf_npm.sh to diff.
// Usage: NODE_PATH=<folder with node_modules> node gguf_npm_dump.mjs FILE.gguf
import { createRequire } from "module";
const require = createRequire(process.env.MT_NPM_DIR + "/");
const { gguf } = await import(require.resolve("@huggingface/gguf"));

const TYPES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"];
const hex = (s) => Buffer.from(s, "utf8").toString("hex");
function fmt(t, v) {
  if (TYPES[t] === "string") return hex(v);
  if (TYPES[t] === "f32") { const b = new DataView(new ArrayBuffer(4)); b.setFloat32(0, v, true); return b.getUint32(0, true).toString(16).padStart(8, "0"); }
  if (TYPES[t] === "f64") { const b = new DataView(new ArrayBuffer(8)); b.setFloat64(0, v, true); return b.getBigUint64(0, true).toString(16).padStart(16, "0"); }
  if (TYPES[t] === "bool") return v ? "1" : "0";
  return BigInt(v).toString();
}
const r = await gguf(process.argv[2], { allowLocalFile: true, typedMetadata: true });
for (const [k, e] of Object.entries(r.typedMetadata)) {
  if (k === "version" || k === "tensor_count" || k === "kv_count") continue; // the header, not metadata
  if (TYPES[e.type] === "array")
    console.log(`meta ${k} array array<${TYPES[e.subType]}>[${e.value.length}] ${e.value.map((x) => fmt(e.subType, x)).join(",")}`);
  else console.log(`meta ${k} ${TYPES[e.type]} ${fmt(e.type, e.value)}`);
}
for (const t of r.tensorInfos)
  console.log(`tensor ${t.name} ${t.shape.map((x) => x.toString()).join(",")} ${t.dtype} ${t.offset.toString()}`);
console.log(`data_offset ${r.tensorDataOffset.toString()}`);
