import { curveKeyPair, Router } from "zeromq";

/** A CURVE key pair, Z85-encoded (40 characters each), as libzmq takes them. */
export interface CurveKeys {
  publicKey: string;
  secretKey: string;
}

export function makeCurveKeys(): CurveKeys {
  return curveKeyPair();
}

export const Z85_KEY = /^[0-9a-zA-Z.:+=^!/*?&<>()[\]{}@%$#-]{40}$/;

const Z85_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/** Z85 (ZMQ RFC 32) encoding of bytes whose length is a multiple of 4. */
export function z85Encode(data: Uint8Array): string {
  let out = "";
  for (let i = 0; i < data.length; i += 4) {
    let value = ((data[i]! << 24) >>> 0) + (data[i + 1]! << 16) + (data[i + 2]! << 8) + data[i + 3]!;
    const chunk: string[] = [];
    for (let j = 0; j < 5; j++) {
      chunk.unshift(Z85_CHARS[value % 85]!);
      value = Math.floor(value / 85);
    }
    out += chunk.join("");
  }
  return out;
}

/** Who may connect: a function of the ZAP domain and the client's public key (Z85). */
export type ZapPolicy = (domain: string, clientKey: string, address: string) => boolean;

/**
 * A ZAP handler (ZMQ RFC 27) for this process's CURVE sockets: without one, CURVE admits any
 * client key. It answers 200 only to keys the policy accepts, 400 to everything else.
 */
export class ZapHandler {
  private readonly router = new Router({ linger: 0 });
  private closed = false;

  private constructor(
    private readonly policy: ZapPolicy,
    private readonly onDecision?: (d: { domain: string; key: string; ok: boolean }) => void,
  ) {}

  static async start(
    policy: ZapPolicy,
    onDecision?: (d: { domain: string; key: string; ok: boolean }) => void,
  ): Promise<ZapHandler> {
    const h = new ZapHandler(policy, onDecision);
    await h.router.bind("inproc://zeromq.zap.01");
    void h.loop();
    return h;
  }

  close(): void {
    this.closed = true;
    this.router.close();
  }

  private async loop(): Promise<void> {
    try {
      for await (const frames of this.router) {
        // [peer, empty, version, request id, domain, address, identity, mechanism, credentials...]
        const [peer, , version, requestId, domain, address, , mechanism, key] = frames;
        let ok = false;
        const keyText = key && key.length === 32 ? z85Encode(key) : "";
        if (version?.toString() === "1.0" && mechanism?.toString() === "CURVE" && keyText) {
          ok = this.policy(domain?.toString() ?? "", keyText, address?.toString() ?? "");
        }
        this.onDecision?.({ domain: domain?.toString() ?? "", key: keyText, ok });
        await this.router.send([
          peer!,
          Buffer.alloc(0),
          "1.0",
          requestId ?? Buffer.alloc(0),
          ok ? "200" : "400",
          ok ? "OK" : "key not allowed",
          ok ? keyText : "",
          Buffer.alloc(0),
        ]);
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }
}

/** CURVE options for a client-side socket that pins the server's public key. */
export function curveClientOptions(serverKey: string, own: CurveKeys) {
  return { curveServerKey: serverKey, curvePublicKey: own.publicKey, curveSecretKey: own.secretKey };
}

/** CURVE options for a server-side (bound) socket, with the ZAP domain it is checked under. */
export function curveServerOptions(own: CurveKeys, domain: string) {
  return {
    curveServer: true,
    curveSecretKey: own.secretKey,
    curvePublicKey: own.publicKey,
    zapDomain: domain,
    zapEnforceDomain: true,
  };
}
