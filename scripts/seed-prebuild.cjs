// Puts the better-sqlite3 binary that this machine built (npm install compiles it from source:
// GitHub, where its prebuilt binaries live, is out of reach here) into prebuild-install's cache, so
// that the test suite's later installs of the same version for the same Node ABI (the package
// test's `npm install -g`, the Ansible rollout's dependency set) unpack it instead of compiling
// sqlite3.c again (about a CPU-minute each). Writes nothing when the cache has the file already.
//
//   node scripts/seed-prebuild.cjs [DIR]   # DIR: an installed better-sqlite3 (default node_modules/better-sqlite3)
//
// Run it with the Node whose ABI the binary was built for. The cache path and the download URL
// are prebuild-install's own (its rc and util modules), so they follow its naming exactly.
const { execFileSync } = require("node:child_process");
const { existsSync, mkdirSync, renameSync } = require("node:fs");
const { createRequire } = require("node:module");
const path = require("node:path");

const dir = path.resolve(process.argv[2] ?? "node_modules/better-sqlite3");
const binary = path.join(dir, "build", "Release", "better_sqlite3.node");
const from = createRequire(path.join(dir, "package.json"));
const pkg = from("./package.json");
const rc = from("prebuild-install/rc")(pkg);
const util = from("prebuild-install/util");
const cached = util.cachedPrebuild(util.getDownloadUrl({ ...rc, pkg }));

if (!existsSync(binary)) {
  console.error(`seed-prebuild: no ${binary}; nothing to seed`);
  process.exit(1);
}
if (existsSync(cached)) {
  console.log(`seed-prebuild: better-sqlite3 ${pkg.version} for ABI ${rc.abi} is cached already (${cached})`);
  process.exit(0);
}
mkdirSync(path.dirname(cached), { recursive: true });
const tmp = `${cached}.${process.pid}.tmp`;
execFileSync("tar", ["-czf", tmp, "-C", dir, "build/Release/better_sqlite3.node"]);
renameSync(tmp, cached);
console.log(`seed-prebuild: better-sqlite3 ${pkg.version} for ABI ${rc.abi} cached as ${cached}`);
