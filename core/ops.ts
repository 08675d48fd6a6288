import { createServer, type Server } from "node:http";

/**
 * What a server's or balancer's metrics registry holds. `processMetrics`: Node's own (prom-client's
 * defaults: memory, CPU, GC, event-loop delay). Their event-loop delay monitor wakes the process
 * every 10 ms, idle or not (here about 40 ms of CPU in 10 s, and most of an idle local stack's
 * CPU), so the commands collect them only where an HTTP port serves /metrics.
 */
export interface MetricsOptions {
  processMetrics?: boolean;
}

export interface OpsHandlers {
  /** Ready when sockets and store are ready. */
  health(): { ready: boolean; version: string; [k: string]: unknown };
  metrics(): Promise<{ contentType: string; body: string }>;
}

/** The small operator HTTP port of a server or balancer: `/healthz` and Prometheus `/metrics`. */
export async function startOpsServer(
  host: string,
  port: number,
  handlers: OpsHandlers,
): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      const h = handlers.health();
      res.writeHead(h.ready ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: h.ready ? "ready" : "unavailable", ...h }));
      return;
    }
    if (path === "/metrics") {
      handlers
        .metrics()
        .then((m) => {
          res.writeHead(200, { "content-type": m.contentType });
          res.end(m.body);
        })
        .catch(() => {
          res.writeHead(500);
          res.end();
        });
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === "object" && addr ? addr.port : port,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
