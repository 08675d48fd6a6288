import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  ensureIdentity,
  isProtected,
  loadIdentity,
  profilePaths,
  saveIdentity,
} from "../../core/client/profile.js";
import { identitySecrets } from "../../core/crypto/keys.js";

describe("profile keys on disk", () => {
  it("are readable by the user only, in clear by default", () => {
    const home = mkdtempSync(join(tmpdir(), "zmqchat-prof-"));
    try {
      const paths = profilePaths(home, "alice");
      const made = ensureIdentity(paths, "alice");
      assert.equal(statSync(paths.identity).mode & 0o777, 0o600);
      assert.equal(statSync(paths.dir).mode & 0o777, 0o700);
      assert.equal(isProtected(paths), false);
      assert.deepEqual(loadIdentity(paths, "alice").identity.publicKeys, made.identity.publicKeys);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("can be encrypted under a passphrase: no key material in clear, and no use without it", () => {
    const home = mkdtempSync(join(tmpdir(), "zmqchat-prof-"));
    try {
      const paths = profilePaths(home, "bob");
      const made = ensureIdentity(paths, "bob", { passphrase: "a long passphrase" });
      assert.equal(isProtected(paths), true);
      const text = readFileSync(paths.identity, "utf8");
      const secrets = identitySecrets(made.identity);
      assert.equal(text.includes(secrets.sign.d), false, "the signing key is not in clear");
      assert.equal(text.includes(secrets.enc.d), false, "the encryption key is not in clear");
      assert.throws(() => loadIdentity(paths, "bob"), {
        code: "unauthorized",
        message: /protected by a passphrase/,
      });
      assert.throws(() => loadIdentity(paths, "bob", { passphrase: "wrong passphrase" }), {
        code: "unauthorized",
      });
      const opened = loadIdentity(paths, "bob", { passphrase: "a long passphrase" });
      assert.deepEqual(opened.identity.publicKeys, made.identity.publicKeys);
      saveIdentity(paths, opened);
      assert.equal(isProtected(paths), false, "unprotecting stores them in clear again");
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
