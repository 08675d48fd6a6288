/**
 * Loaded with `--import` into every test file's process (scripts/test.sh), so test files that run
 * at the same time share no per-user runtime state: each process gets a runtime directory of its
 * own (`XDG_RUNTIME_DIR`, where balancers publish their CURVE keys for local clients), inherited
 * by everything it spawns, and removed when the process exits. Temporary files and ports are
 * already per test (mkdtemp, OS-assigned ports).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const runtime = mkdtempSync(join(tmpdir(), "zmqchat-test-runtime-"));
process.env.XDG_RUNTIME_DIR = runtime;
process.on("exit", () => rmSync(runtime, { recursive: true, force: true }));
