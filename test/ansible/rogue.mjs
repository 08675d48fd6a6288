// A rogue against a deployed balancer: raw DEALERs that announce READY on the backend port
// (P+1), one in plaintext and one with a CURVE key of its own that pins the balancer's key,
// and raw PUBs on the publication port (P+2) publishing to a topic a legitimate subscriber
// listens on (over its connection on P, pinned key, as clients of this release subscribe: a
// topic tagged with the balancer's TOPIC_KEY, so the balancer takes it). Runs for SECONDS while
// the caller chats, then prints what the rogue got and exits 0 only when it got nothing. A ping
// over CURVE on P and the balancer's confirmation of the subscription prove the probe's
// address, key and topic are right (else "nothing" would prove nothing).
//
//   node test/ansible/rogue.mjs HOST PORT BALANCER_KEY SECONDS TOPIC_KEY
import { createHmac, randomBytes } from "node:crypto";
import { curveKeyPair, Dealer, Publisher } from "zeromq";

const [host, portText, balancerKey, secondsText, topicKeyHex] = process.argv.slice(2);
const port = Number(portText);
const seconds = Number(secondsText ?? "8");
if (
  !host ||
  !Number.isInteger(port) ||
  !balancerKey ||
  balancerKey.length !== 40 ||
  !/^[0-9a-f]{64}$/.test(topicKeyHex ?? "")
) {
  console.error("usage: rogue.mjs HOST PORT BALANCER_KEY SECONDS TOPIC_KEY");
  process.exit(2);
}
const at = (offset) => `tcp://${host}:${port + offset}`;
const curve = () => {
  const own = curveKeyPair();
  return { curveServerKey: balancerKey, curvePublicKey: own.publicKey, curveSecretKey: own.secretKey };
};

// A topic the balancer admits (core/protocol/topics.ts): 16 bytes of id, 16 of HMAC-SHA256 tag.
const id = randomBytes(16);
const tag = createHmac("sha256", Buffer.from(topicKeyHex, "hex")).update(id).digest().subarray(0, 16);
const topic = Buffer.concat([id, tag]).toString("hex");
const dealers = [
  new Dealer({ linger: 0, routingId: "rogue-plain" }),
  new Dealer({ linger: 0, routingId: "rogue-curve", ...curve() }),
];
const pubs = [new Publisher({ linger: 0 }), new Publisher({ linger: 0, ...curve() })];
const watcher = new Dealer({ linger: 0, ...curve() });
const ping = new Dealer({ linger: 0, ...curve() });
for (const d of dealers) d.connect(at(1));
for (const p of pubs) p.connect(at(2));
watcher.connect(at(0));
ping.connect(at(0));

let requests = 0;
let forged = 0;
let pong = false;
let confirmed = false;
const drain = async (socket, onMessage) => {
  try {
    for await (const parts of socket) onMessage(parts);
  } catch {
    // closed
  }
};
for (const d of dealers) void drain(d, ([command]) => command?.toString() === "REQ" && requests++);
// Deliveries over the connection are two frames, [topic, frame]; replies one.
void drain(watcher, (parts) => {
  if (parts.length !== 2) return;
  if (String(parts[1]) === '{"type":"subscribed"}') confirmed = true;
  else forged++;
});
void drain(ping, ([frame]) => {
  if (String(frame).includes('"rogue-ping"')) pong = true;
});

// One send at a time per socket; a socket that never got in just keeps waiting.
const busy = new Set();
const push = (socket, parts) => {
  if (busy.has(socket)) return;
  busy.add(socket);
  socket
    .send(parts)
    .catch(() => {})
    .finally(() => busy.delete(socket));
};
const timer = setInterval(() => {
  for (const d of dealers) push(d, ["READY", JSON.stringify({ version: "rogue" })]);
  for (const p of pubs) push(p, [topic, "forged"]);
  if (!pong) push(ping, ["B", JSON.stringify({ v: 1, id: "rogue-ping", type: "ping", body: {} })]);
  if (!confirmed)
    push(watcher, ["B", JSON.stringify({ v: 1, id: "watch", type: "subscribe", body: { topics: [topic] } })]);
}, 250);

console.log("rogue ready");
await new Promise((resolve) => {
  process.once("SIGTERM", resolve);
  setTimeout(resolve, seconds * 1000);
});
clearInterval(timer);
for (const s of [...dealers, ...pubs, watcher, ping]) s.close();
console.log(JSON.stringify({ requests, forged, pingAnswered: pong, subscribed: confirmed }));
process.exit(requests === 0 && forged === 0 && pong && confirmed ? 0 : 1);
