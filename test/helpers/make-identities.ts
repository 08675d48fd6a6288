// A child process of test/unit/keygen-deadlock.test.ts: makes argv[3] identities as the product
// makes and saves them (generateIdentity, identitySecrets: every key exported as JWK), then exits 0.
import { generateIdentity, identitySecrets } from "../../core/crypto/keys.js";

const count = Number(process.argv[3] ?? 1000);
for (let i = 0; i < count; i++) identitySecrets(generateIdentity("x"));
