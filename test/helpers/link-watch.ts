/**
 * A bare client link that takes live deliveries over its request connection, as the product's
 * client does when the balancer's `hello` offers it (core/protocol/broker.ts, LINK_DELIVERIES):
 * hello, then `subscribe` on route "B". For tests that watch what reaches a subscriber.
 */
import { isSubscribedFrame, LINK_DELIVERIES } from "../../core/protocol/broker.js";
import type { ClientLink } from "../../core/transport.js";
import { type CurveKeys, ZeromqClientTransport } from "../../transports/zeromq/index.js";

export interface LinkWatch {
  link: ClientLink;
  /** Each delivery's body as text, the balancer's confirmations left out. */
  got: string[];
  /** Topics the balancer confirmed (SUBSCRIBED_FRAME). */
  confirmed: Set<string>;
  /** The balancer's hello. */
  hello: { pubPort: number; deliveries?: string };
  close(): Promise<void>;
}

/** Connects to `endpoint` (CurveZMQ when `curve` is given), says hello, subscribes to `topics` over the link. */
export async function watchOverLink(
  endpoint: string,
  topics: string[],
  curve?: { serverKey: string; keys: CurveKeys },
): Promise<LinkWatch> {
  const link = new ZeromqClientTransport(curve ? { curve } : {}).connect(endpoint);
  const got: string[] = [];
  const confirmed = new Set<string>();
  link.onDelivery((topic, frame) => {
    if (isSubscribedFrame(frame)) confirmed.add(topic);
    else got.push(frame.toString());
  });
  const hello = await new Promise<LinkWatch["hello"]>((resolve) => {
    link.onReply((f) => {
      const r = JSON.parse(f.toString()) as { id?: string; body?: LinkWatch["hello"] };
      if (r.id === "hello" && r.body) resolve(r.body);
    });
    link.send(Buffer.from(JSON.stringify({ v: 1, id: "hello", type: "hello", body: {} })), "broker");
  });
  if (hello.deliveries !== LINK_DELIVERIES) {
    await link.close();
    throw new Error(`the balancer does not offer deliveries over the link: ${JSON.stringify(hello)}`);
  }
  for (const t of topics) link.subscribe(t);
  link.openDeliveries(hello.pubPort, null, hello.deliveries);
  return { link, got, confirmed, hello, close: () => link.close() };
}
