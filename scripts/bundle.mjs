// After tsc (npm run build): bundles the `zmqchat` command so that a start loads a handful of files
// instead of ~270 (our ~90 modules, zod's ~100, commander's). Each start of `zmqchat send` spent
// most of its time in Node's module loader (resolve, read, compile each file).
//
// dist/bin/zmqchat.js is replaced by the bundle, whose shared code goes into chunks beside it in
// dist/bin/ (code-splitting keeps every dynamic import lazy: the server, the stack, the TUI and the
// daemon load only when run). The opener's worker is bundled to dist/bin/open-worker.js, which is
// where the bundled opener looks for it (new URL("./open-worker.js", import.meta.url) from a chunk
// in dist/bin/); so is the SQLite store's writer thread, to dist/bin/sqlite-writer.js. The rest of dist/ stays as tsc wrote it, for the benchmark and the tests that
// import modules. Every other dependency stays in node_modules: native modules, packages that load
// files of their own by path (pino's worker transport), large ones loaded only by some commands
// (the AWS SDK, InfluxDB's client, the password-strength dictionaries, ink and react).
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

// The packages bundled in: pure JavaScript, loaded by every start, many files each.
const INLINE = new Set(["zod", "commander", "json-rpc-2.0"]);
const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const out = "dist/bin";
for (const f of readdirSync(out)) if (/^chunk-[A-Z0-9]+\.js(\.map)?$/.test(f)) rmSync(join(out, f));

await build({
  entryPoints: {
    zmqchat: "dist/bin/zmqchat.js",
    "open-worker": "dist/core/client/open-worker.js",
    "sqlite-writer": "dist/server/store/sqlite-writer.js",
  },
  outdir: out,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  chunkNames: "chunk-[hash]",
  sourcemap: "linked",
  logLevel: "warning",
  external: Object.keys(pkg.dependencies).filter((name) => !INLINE.has(name)),
  // Bundled CommonJS packages call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as __zmqchatRequire } from 'node:module'; const require = __zmqchatRequire(import.meta.url);",
  },
});
