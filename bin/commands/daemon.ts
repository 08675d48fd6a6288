import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { createServer, isIP, type Server } from "node:net";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Command } from "commander";
import { z } from "zod";
import type { ChatMessage } from "../../core/client/cache.js";
import type { ChatClient } from "../../core/client/client.js";
import { profilePaths } from "../../core/client/profile.js";
import { DEFAULT_LIMITS, RpcConnection } from "../../core/daemon/connection.js";
import { CacheFeed } from "../../core/daemon/feed.js";
import { method, rpcServer } from "../../core/daemon/rpc.js";
import { ZmqchatError } from "../../core/errors.js";
import { NAME_PATTERN, NAME_RULE } from "../../core/protocol/limits.js";
import { openClient, requireUser, settingsOf } from "../context.js";
import { readOrCreateOnce } from "../create-once.js";
import { daemonSocketPath } from "../daemon-client.js";
import { messageFields } from "../format.js";
import type { Io } from "../io.js";
import { exitCodeFor } from "../report.js";
import { actionMethods } from "./actions.js";
import { fileMethods } from "./files.js";
import { contactsOp, groupChangeOp, groupCreateOp, groupsOp, historyOp, sendOp, syncOp } from "./headless.js";

export interface DaemonFlags {
  socket?: string;
  stdio?: boolean;
  tcp?: string;
  allowRemote?: boolean;
}

/** Most connections the daemon serves at once (socket and TCP together). */
const MAX_CONNECTIONS = 64;

const name = z.string().regex(NAME_PATTERN, NAME_RULE);
const none = z.object({}).strict();
const oneOf = (a: string, b: string) =>
  [
    (p: Record<string, unknown>) => (p[a] === undefined) !== (p[b] === undefined),
    { message: `give ${a} or ${b}, not both` },
  ] as const;

/** The daemon's methods: names and params are a contract (README, "Daemon"). */
export function daemonMethods(client: ChatClient) {
  const members = (min: number) => z.array(name).min(min).max(256);
  return {
    send: method(
      z
        .object({
          to: name.optional(),
          group: name.optional(),
          text: z.string(),
          replyTo: z.string().optional(),
          queue: z.boolean().optional(),
          timeoutMs: z.number().int().min(1).max(600_000).optional(),
        })
        .strict()
        .refine(...oneOf("to", "group")),
      (p) => {
        const target = p.to !== undefined ? { user: p.to } : { group: p.group! };
        return sendOp(client, {
          target,
          text: p.text,
          queue: p.queue,
          timeoutMs: p.timeoutMs,
          replyTo: p.replyTo,
        });
      },
    ),
    ...actionMethods(client),
    ...fileMethods(client),
    history: method(
      z
        .object({
          with: name.optional(),
          group: name.optional(),
          // No upper bound: `history --limit N` asks the daemon for what it would show itself.
          limit: z.number().int().min(1).default(100),
          markRead: z.boolean().optional(),
        })
        .strict()
        .refine(...oneOf("with", "group")),
      (p, caller) =>
        historyOp(
          client,
          {
            target: p.with !== undefined ? { user: p.with } : { group: p.group! },
            limit: p.limit,
            markRead: p.markRead === true,
          },
          (text) => caller.warn(text),
        ),
    ),
    sync: method(none, () => syncOp(client)),
    contacts: method(none, () => contactsOp(client)),
    groups: method(none, () => groupsOp(client)),
    "group.create": method(z.object({ name, members: members(0) }).strict(), (p) =>
      groupCreateOp(client, p.name, p.members),
    ),
    "group.add": method(z.object({ name, members: members(1) }).strict(), (p) =>
      groupChangeOp(client, "add", p.name, p.members),
    ),
    "group.remove": method(z.object({ name, members: members(1) }).strict(), (p) =>
      groupChangeOp(client, "remove", p.name, p.members),
    ),
    subscribe: method(none, (_p, caller) => {
      caller.subscribe();
      return { subscribed: true };
    }),
    unsubscribe: method(none, (_p, caller) => {
      caller.unsubscribe();
      return { subscribed: false };
    }),
  };
}

/**
 * One daemon per profile: an exclusive SQLite lock on `daemon.lock`, which the kernel releases
 * when the process dies (fcntl), so a killed daemon never blocks the next one.
 */
function lockProfile(dir: string, user: string): () => void {
  const path = join(dir, "daemon.lock");
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
  } catch (err) {
    db.close();
    throw new ZmqchatError("conflict", `a daemon already runs for ${user}`, {
      hint: `stop it first (its socket is ${daemonSocketPath(dir)})`,
      cause: err,
    });
  }
  chmodSync(path, 0o600);
  return () => db.close();
}

/** The token TCP clients must present (`auth`): a random file of the profile, 0600, made once. */
function tcpToken(dir: string): { file: string; check: (t: string) => boolean } {
  const file = join(dir, "daemon.token");
  const token = readOrCreateOnce(file, () => `${randomBytes(32).toString("base64url")}\n`);
  chmodSync(file, 0o600);
  const digest = (s: string) => createHash("sha256").update(s).digest();
  const want = digest(token.trim());
  // Equal-length digests, compared in constant time.
  return { file, check: (t) => timingSafeEqual(digest(t), want) };
}

function parseTcp(spec: string, allowRemote: boolean): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(spec);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!host || !Number.isInteger(port) || port > 65535)
    throw new ZmqchatError("usage", `--tcp takes HOST:PORT, not "${spec}"`, { hint: "--tcp 127.0.0.1:7583" });
  const loopback = host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
  if (!loopback && !allowRemote)
    throw new ZmqchatError("usage", `--tcp ${host} is not loopback`, {
      hint: "pass --allow-remote to listen beyond this machine (clients then need the token; the link is plaintext)",
    });
  return { host, port };
}

function listen(server: Server, ...args: unknown[]): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    (server.listen as (...a: unknown[]) => void)(...args, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** `zmqchat daemon`: one logged-in client of a profile, served as JSON-RPC 2.0 over a socket, stdio or TCP. */
export async function daemonCommand(cmd: Command, io: Io, flags: DaemonFlags): Promise<void> {
  const settings = settingsOf(cmd);
  const user = requireUser(settings);
  const dir = profilePaths(settings.home, user).dir;
  const tcp = flags.tcp !== undefined ? parseTcp(flags.tcp, Boolean(flags.allowRemote)) : null;
  const s = openClient(settings);
  const client = s.client;
  const release = lockProfile(dir, user);
  const connections = new Set<RpcConnection>();
  const servers: Server[] = [];
  const socketPath = flags.socket ?? daemonSocketPath(dir);
  let stopping = false;
  let stopped!: () => void;
  const whenStopped = new Promise<void>((resolve) => {
    stopped = resolve;
  });
  try {
    const rpc = rpcServer(daemonMethods(client), (code) => ({ exit: exitCodeFor(code) }));
    const feed = new CacheFeed<ChatMessage>(client.cache, (m) =>
      m.from === client.name ? null : messageFields(m),
    );
    const serve = (
      input: NodeJS.ReadableStream,
      output: NodeJS.WritableStream,
      opts: { token?: (t: string) => boolean; onClose?: () => void } = {},
    ) => {
      const conn: RpcConnection = new RpcConnection(rpc, input as never, output as never, {
        feed,
        limits: DEFAULT_LIMITS,
        token: opts.token,
        onClose: () => {
          connections.delete(conn);
          opts.onClose?.();
        },
      });
      connections.add(conn);
      return conn;
    };
    const wakeAll = () => {
      for (const c of connections) c.wake();
    };
    let waking = false;
    client.on((e) => {
      // What waits in the outbox (a `send` with `queue` while the service was away) goes out when the link returns.
      if (e.type === "state" && e.state === "online" && client.cache.outbox().length > 0)
        client
          .flushOutbox()
          .catch((err: unknown) => io.err(`zmqchat: warning: the outbox waits: ${(err as Error).message}`));
      if (e.type !== "message" || waking) return;
      waking = true;
      queueMicrotask(() => {
        waking = false;
        wakeAll();
      });
    });
    // Another process of this profile (the TUI, a command run without the daemon) may fill the
    // cache; subscribers read the cache, so look now and then as well as on each event.
    const poll = setInterval(wakeAll, 1000);
    poll.unref();

    // A unix socket's path must fit in sockaddr_un (108 bytes on Linux, with its final NUL).
    if (Buffer.byteLength(socketPath) > 107)
      throw new ZmqchatError("usage", `the socket path ${socketPath} is longer than 107 bytes`, {
        hint: "pass --socket with a shorter path",
      });
    // A socket file left by a daemon that was killed: the lock says nobody serves it now.
    if (existsSync(socketPath)) unlinkSync(socketPath);
    const unix = createServer({ allowHalfOpen: true }, (socket) => serve(socket, socket));
    unix.maxConnections = MAX_CONNECTIONS;
    const umask = process.umask(0o177);
    try {
      await listen(unix, socketPath);
    } finally {
      process.umask(umask);
    }
    chmodSync(socketPath, 0o600);
    servers.push(unix);
    io.err(`zmqchat: daemon for ${user} listening on ${socketPath}`);

    if (tcp) {
      const token = tcpToken(dir);
      const server = createServer({ allowHalfOpen: true }, (socket) =>
        serve(socket, socket, { token: token.check }),
      );
      server.maxConnections = MAX_CONNECTIONS;
      await listen(server, tcp.port, tcp.host);
      servers.push(server);
      const address = server.address() as { address: string; port: number };
      io.err(
        `zmqchat: daemon for ${user} listening on tcp ${address.address}:${address.port} (token in ${token.file})`,
      );
    }
    if (flags.stdio) {
      // The caller ended stdin: answer what is in flight, then stop.
      serve(process.stdin, process.stdout, { onClose: stopped });
    }

    // Logged in and live in the background; methods log in on their own when called before.
    void (async () => {
      for (let attempt = 0; !stopping; attempt++) {
        try {
          await client.goLive();
          client.keepAlive();
          // A running daemon is this user being around: share presence (issue 17; config `presence`).
          await client
            .startPresence()
            .catch((err) => io.err(`zmqchat: warning: presence: ${(err as Error).message}`));
          return;
        } catch (err) {
          if (attempt === 0) io.err(`zmqchat: warning: not live yet (${(err as Error).message}); retrying`);
          await new Promise((r) => setTimeout(r, 2000).unref());
        }
      }
    })();

    await Promise.race([io.untilInterrupted(), whenStopped]);
  } finally {
    stopping = true;
    for (const server of servers) server.close();
    for (const c of connections) c.close();
    if (servers.length > 0 && existsSync(socketPath)) unlinkSync(socketPath);
    await s.close();
    release();
  }
}
