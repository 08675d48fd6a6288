/**
 * Reads an async source (a socket's messages) and hands each item to `each`, giving the event
 * loop a turn after every `burst` items. A socket with a backlog resolves each receive at once,
 * so a plain `for await` runs in microtasks until the backlog is gone: timers and setImmediate
 * callbacks (the live path's runs, hold timers, receipts) wait behind it. In the group bench a
 * member process with 25 sockets behind was seen not to return to its event loop for 30 s, while
 * deliveries queued past the live path's bound and turned into syncs.
 */
export async function readFairly<T>(
  source: AsyncIterable<T>,
  each: (item: T) => void,
  burst: number,
): Promise<void> {
  let n = 0;
  for await (const item of source) {
    each(item);
    if (++n >= burst) {
      n = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}
