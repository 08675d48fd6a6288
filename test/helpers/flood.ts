/**
 * A request flood from one connection, as its own process so the test's clients are not
 * slowed by it: `flood.ts FRONTEND KIND COUNT SECONDS`. KIND `ping` sends small requests to the
 * servers, `register` registration requests, `mib` 1 MiB frames. Stops at COUNT or SECONDS,
 * whichever comes first (or at SIGTERM), and prints one JSON line: what it sent and the
 * replies by code.
 */
import { Dealer } from "zeromq";

const [frontend, kind, countText, secondsText] = process.argv.slice(2);
const count = Number(countText);
const until = Date.now() + Number(secondsText) * 1000;
// A device key like any client's when the stack runs CurveZMQ (RealStack.socketSecurity).
const security = JSON.parse(process.env.FLOOD_SOCKET_SECURITY ?? "{}") as Record<string, unknown>;
const dealer = new Dealer({ linger: 0, sendHighWaterMark: 1000, receiveHighWaterMark: 1000, ...security });
dealer.connect(frontend!);
const replies: Record<string, number> = {};
let stopped = false;
let interrupted = false;
process.on("SIGTERM", () => {
  interrupted = true;
});
const reading = (async () => {
  for await (const [frame] of dealer) {
    const r = JSON.parse(String(frame)) as { ok: boolean; error?: { code: string } };
    const code = r.ok ? "ok" : (r.error?.code ?? "?");
    replies[code] = (replies[code] ?? 0) + 1;
    if (stopped) break;
  }
})().catch(() => {});
const pad = kind === "mib" ? "x".repeat(1024 * 1024 - 200) : "";
let sent = 0;
process.stdout.write('{"started":true}\n');
// 1 MiB frames are made once: building each would slow the flood down to what JSON.stringify makes.
const big =
  kind === "mib" ? Buffer.from(JSON.stringify({ v: 1, id: "big", type: "ping", body: {}, pad })) : null;
while (sent < count && Date.now() < until && !interrupted) {
  const id = `f${sent}`;
  const body =
    kind === "register"
      ? { name: `flood${process.pid}x${sent}`, keys: { sign: "A".repeat(43), enc: "A".repeat(43) } }
      : {};
  const frame = big ?? JSON.stringify({ v: 1, id, type: kind === "register" ? "register" : "ping", body });
  await dealer.send(["S", frame]);
  sent++;
}
// Let the last replies arrive, a moment at most.
const drainUntil = Date.now() + 1000;
while (Date.now() < drainUntil && Object.values(replies).reduce((a, b) => a + b, 0) < sent) {
  await new Promise((r) => setTimeout(r, 20));
}
stopped = true;
process.stdout.write(`${JSON.stringify({ sent, replies })}\n`);
dealer.close();
await reading;
process.exit(0);
