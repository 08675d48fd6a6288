import { createServer } from "node:net";

function free(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * A base port P with P..P+count-1 all free on `host` just now, for a process whose ports must
 * stay together (the balancer's four). Another process may still take one before we bind:
 * callers retry on EADDRINUSE. The first port comes from the OS, so it is in its range for
 * ephemeral ports and unlikely to be a configured one.
 */
export async function freeRun(host: string, count: number, tries = 50): Promise<number> {
  for (let i = 0; i < tries; i++) {
    const first = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once("error", reject);
      s.listen({ port: 0, host, exclusive: true }, () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    if (first + count - 1 > 65535) continue;
    let ok = true;
    for (let p = first; p < first + count && ok; p++) ok = await free(host, p);
    if (ok) return first;
  }
  throw new Error(`no ${count} free consecutive ports on ${host}`);
}
