import { lstatSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { JSONRPCClient, JSONRPCErrorException, type JSONRPCResponse } from "json-rpc-2.0";
import { profilePaths } from "../core/client/profile.js";
import type { Settings } from "../core/config/config.js";
import { ERROR_CODES, type ErrorCode, ZmqchatError } from "../core/errors.js";
import { requireUser } from "./context.js";
import type { Io } from "./io.js";

/** The daemon's socket in a profile directory. */
export function daemonSocketPath(profileDir: string): string {
  return join(profileDir, "daemon.sock");
}

/**
 * Why a daemon socket must not be trusted, or null when it may: it must be a socket owned by
 * this user that nobody else can open (0600). Someone else's socket would see every request.
 */
export function socketProblem(path: string): string | null {
  const st = lstatSync(path);
  if (!st.isSocket()) return "it is not a socket";
  if (typeof process.getuid === "function" && st.uid !== process.getuid())
    return `it belongs to uid ${st.uid}, not you`;
  if ((st.mode & 0o077) !== 0)
    return `its mode is ${(st.mode & 0o777).toString(8).padStart(4, "0")}, not 0600`;
  return null;
}

const CONNECT_MS = 500;

function open(path: string): Promise<Socket | null> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(null);
    }, CONNECT_MS);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    // Nobody listens (a daemon that was killed left its socket file): work without it.
    socket.once("error", () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

/**
 * Asks this profile's running daemon to do one method, or resolves null when none runs (no
 * socket, a stale one, or one that cannot be trusted), so the command does the work itself.
 * The daemon's `warning` notifications are printed as the command would print them; its
 * errors become the same ZmqchatError (code, message, hint) the command would have thrown.
 */
export async function viaDaemon<T>(
  settings: Settings,
  io: Pick<Io, "err">,
  method: string,
  params: Record<string, unknown>,
): Promise<{ result: T } | null> {
  // A command given its own --endpoint or CURVE key on the command line asks for that service, and
  // one given --request-timeout for its own wait; the daemon serves the profile's service with its
  // own settings, so the command does the work itself.
  if (
    settings.sources.endpoint === "flag" ||
    settings.sources.curveServerKey === "flag" ||
    settings.sources.requestTimeout === "flag"
  )
    return null;
  const path = daemonSocketPath(profilePaths(settings.home, requireUser(settings)).dir);
  let problem: string | null;
  try {
    problem = socketProblem(path);
  } catch {
    return null;
  }
  if (problem) {
    io.err(`zmqchat: warning: not using the daemon socket ${path}: ${problem}`);
    return null;
  }
  const socket = await open(path);
  if (!socket) return null;
  const link = daemonLink(socket, (method, p) => {
    const text = (p as { text?: unknown } | undefined)?.text;
    if (method === "warning" && typeof text === "string") io.err(`zmqchat: warning: ${text}`);
  });
  try {
    return { result: (await link.client.request(method, params)) as T };
  } catch (err) {
    throw fromRpcError(err);
  } finally {
    link.close();
  }
}

/**
 * A JSON-RPC client (json-rpc-2.0's JSONRPCClient) on a connected daemon socket: one object per
 * line each way; notifications go to `onNotification`. Pending requests fail when the socket closes.
 */
export function daemonLink(
  socket: Socket,
  onNotification: (method: string, params: unknown) => void,
): { client: JSONRPCClient; close(): void } {
  const client = new JSONRPCClient((payload) => {
    socket.write(`${JSON.stringify(payload)}\n`);
  });
  const lines = createInterface({ input: socket });
  lines.on("line", (line) => {
    let msg: { method?: string; params?: unknown } & Partial<JSONRPCResponse>;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (msg.method !== undefined) onNotification(msg.method, msg.params);
    else client.receive(msg as JSONRPCResponse);
  });
  socket.on("close", () =>
    client.rejectAllPendingRequests("the daemon closed the connection before answering"),
  );
  socket.on("error", () => {});
  return {
    client,
    close() {
      lines.close();
      socket.destroy();
    },
  };
}

function fromRpcError(err: unknown): ZmqchatError {
  if (err instanceof JSONRPCErrorException) {
    const data = (err.data ?? {}) as { code?: string; hint?: string };
    const code = (ERROR_CODES as readonly string[]).includes(data.code ?? "")
      ? (data.code as ErrorCode)
      : "internal";
    return new ZmqchatError(code, err.message, data.hint ? { hint: data.hint } : {});
  }
  return new ZmqchatError("unavailable", err instanceof Error ? err.message : String(err), { cause: err });
}
