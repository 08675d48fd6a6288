import type { ClientLink, LinkStateEvent, Route } from "./transport.js";

/**
 * What every client link does the same way whatever carries its frames: it keeps the caller's
 * reply, delivery and state handlers and tells each state change. A transport's link extends
 * it and only moves bytes (`transports/zeromq/client.ts`, `transports/memory/`).
 */
export abstract class ClientLinkBase implements ClientLink {
  abstract readonly endpoint: string;
  protected replyHandler: (frame: Buffer) => void = () => {};
  protected deliveryHandler: (topic: string, frame: Buffer) => void = () => {};
  private readonly stateHandlers: Array<(e: LinkStateEvent) => void> = [];

  abstract send(frame: Uint8Array, route: Route): void;
  abstract openDeliveries(pubPort: number, pubHost: string | null, deliveries?: string): void;
  abstract subscribe(topic: string): void;
  abstract unsubscribe(topic: string): void;
  abstract close(): Promise<void>;

  onReply(handler: (frame: Buffer) => void): void {
    this.replyHandler = handler;
  }

  onDelivery(handler: (topic: string, frame: Buffer) => void): void {
    this.deliveryHandler = handler;
  }

  onState(handler: (event: LinkStateEvent) => void): void {
    this.stateHandlers.push(handler);
  }

  /** Tells every state handler that the link is now `state`. */
  protected emit(state: LinkStateEvent["state"]): void {
    for (const h of this.stateHandlers) h({ state, endpoint: this.endpoint });
  }
}
