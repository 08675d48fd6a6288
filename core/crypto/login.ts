/** What a login signature covers: the client signs exactly these bytes, the server verifies them. */
export function loginChallengeBytes(name: string, nonce: string, expires: number): Buffer {
  return Buffer.from(`zmqchat-login-v1\n${name}\n${nonce}\n${expires}`);
}

/** What a key rotation signature (by the old signing key) covers. */
export function rotationBytes(
  name: string,
  from: { sign: string; enc: string },
  to: { sign: string; enc: string },
): Buffer {
  return Buffer.from(`zmqchat-rotate-v1\n${name}\n${from.sign}\n${from.enc}\n${to.sign}\n${to.enc}`);
}
