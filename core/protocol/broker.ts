/**
 * The control protocol between the balancer and its servers (after the zguide's Paranoid
 * Pirate). Each message's first frame is one of these commands.
 */
export const BrokerCommand = {
  /** server → balancer: I am here and take requests. Body: JSON `{id, version}`. */
  ready: "READY",
  /** both ways: I am alive. */
  heartbeat: "HB",
  /** server → balancer: I am leaving; send me nothing new. */
  bye: "BYE",
  /** balancer → server: welcome, here is where to publish. Body: JSON `{pubPort, pubHost}`. */
  welcome: "WELCOME",
  /** balancer → server: a request `[REQ, peer, frame]`. */
  request: "REQ",
  /** server → balancer: a reply `[REP, peer, frame]`. */
  reply: "REP",
} as const;

/** Seconds between heartbeats, and how many may be missed before a peer counts as dead. */
export const HEARTBEAT_INTERVAL_MS = 1000;
export const HEARTBEAT_LIVENESS = 3;

/**
 * balancer → subscriber, published on a topic as soon as the balancer took a subscription to it
 * (and forwarded it to the servers): what a server publishes on the topic after this frame
 * reaches the subscriber. A listening client syncs when it arrives, so a message stored between
 * its first sync and its subscription taking effect shows at once, not at the next message.
 * Every subscriber of the topic hears it (a device's own sessions). A client from before this
 * frame takes it as a malformed delivery, which makes it sync too.
 */
export const SUBSCRIBED_FRAME = '{"type":"subscribed"}';

/** Whether a delivery frame is the balancer's SUBSCRIBED_FRAME. */
export function isSubscribedFrame(frame: Uint8Array): boolean {
  return (
    frame.byteLength === SUBSCRIBED_FRAME.length &&
    Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString("latin1") === SUBSCRIBED_FRAME
  );
}

/**
 * Deliveries over the request connection (`hello` says `deliveries: "link"`). The client asks
 * the balancer, on its DEALER (route "B"), to subscribe it: `{v:1, id, type:"subscribe",
 * body:{topics}}` or `type:"unsubscribe"`; nothing is answered but an error. The balancer checks
 * each topic as it checks an XPUB subscription, holds at most LINK_TOPICS_PER_PEER for each
 * connection (a connection's are dropped when it goes: ZMQ_ROUTER_NOTIFY), confirms each taken
 * topic with SUBSCRIBED_FRAME, and sends every publication on a held topic to the connection as
 * two frames, [topic, frame]; a reply is one frame. One connection per client instead of a
 * DEALER and a SUB, and a bound per connection that an XPUB cannot give (it keeps every
 * subscription a connection sends, admitted or not, until the connection ends).
 */
export const LINK_DELIVERIES = "link";
export const LINK_TOPICS_PER_PEER = 4;
