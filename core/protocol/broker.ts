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
