/** What a login signature covers: the client signs exactly these bytes, the server verifies them. */
export function loginChallengeBytes(name: string, nonce: string, expires: number): Buffer {
  return Buffer.from(`zmqchat-login-v1\n${name}\n${nonce}\n${expires}`);
}
