import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../../server/store/sqlite.js";
import { storeContract } from "../contract/store-contract.js";

storeContract("sqlite", async (metrics) => {
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-store-"));
  const path = join(dir, "store.db");
  return {
    store: new SqliteStore(path, { metrics }),
    reopen: async () => new SqliteStore(path),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
