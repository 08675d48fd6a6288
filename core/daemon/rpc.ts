import {
  createJSONRPCErrorResponse,
  JSONRPCErrorCode,
  JSONRPCErrorException,
  type JSONRPCID,
  JSONRPCServer,
} from "json-rpc-2.0";
import { z } from "zod";
import { type ErrorCode, ZmqchatError } from "../errors.js";

/** The JSON-RPC error code of every zmqchat failure; its meaning is in `data.code` (an ErrorCode). */
export const APPLICATION_ERROR = -32000;

/** What a method may do to the connection that called it. */
export interface Caller {
  /** Tells the caller a warning (a `warning` notification): what a command prints on stderr. */
  warn(text: string): void;
  /** Starts `message` notifications on this connection. */
  subscribe(): void;
  unsubscribe(): void;
  /** A unix socket or stdio (this machine's user), not TCP: only such a caller may name files by path. */
  readonly local: boolean;
  /** A connection that needs a token (TCP) is authorized once `auth` succeeded. */
  authorized: boolean;
  authorize(token: string): boolean;
}

/** One RPC method: its params' schema and what it does. */
export interface MethodSpec<S extends z.ZodType = z.ZodType> {
  params: S;
  run(params: z.infer<S>, caller: Caller): unknown;
}

export function method<S extends z.ZodType>(
  params: S,
  run: (p: z.infer<S>, caller: Caller) => unknown,
): MethodSpec {
  return { params, run: run as MethodSpec["run"] };
}

/** The `data` of a zmqchat error: its code (the CLI's exit-code meaning), hint, and what `extra` adds. */
export type ErrorData = { code: ErrorCode; hint?: string } & Record<string, unknown>;

/**
 * A JSON-RPC 2.0 server (json-rpc-2.0's JSONRPCServer) over a table of methods: params are
 * checked against each method's schema (-32602 when they do not fit), a ZmqchatError becomes
 * an error -32000 whose `data.code` is its code, and anything else -32603. A connection that
 * is not authorized may call only `auth`.
 */
export function rpcServer(
  methods: Record<string, MethodSpec>,
  extra: (code: ErrorCode) => Record<string, unknown> = () => ({}),
): JSONRPCServer<Caller> {
  // Every failure is answered to its caller; the library would also print each on the console.
  const server = new JSONRPCServer<Caller>({ errorListener: () => {} });
  const data = (code: ErrorCode, hint?: string): ErrorData => ({
    code,
    ...(hint ? { hint } : {}),
    ...extra(code),
  });
  server.mapErrorToJSONRPCErrorResponse = (id: JSONRPCID, err: unknown) => {
    if (err instanceof JSONRPCErrorException)
      return createJSONRPCErrorResponse(id, err.code, err.message, err.data);
    if (err instanceof ZmqchatError)
      return createJSONRPCErrorResponse(id, APPLICATION_ERROR, err.message, data(err.code, err.hint));
    const message = err instanceof Error ? err.message : String(err);
    return createJSONRPCErrorResponse(id, JSONRPCErrorCode.InternalError, message, data("internal"));
  };
  server.applyMiddleware(async (next, request, caller) => {
    if (!caller.authorized && request.method !== "auth")
      return createJSONRPCErrorResponse(
        request.id ?? null,
        APPLICATION_ERROR,
        "call auth with the daemon's token first",
        data("unauthorized"),
      );
    return next(request, caller);
  });
  const table: Record<string, MethodSpec> = {
    auth: method(z.object({ token: z.string().max(256) }), (p, caller) => {
      if (!caller.authorize(p.token)) throw new ZmqchatError("unauthorized", "wrong token");
      return { authorized: true };
    }),
    ...methods,
  };
  for (const [name, spec] of Object.entries(table)) {
    server.addMethod(name, async (raw: unknown, caller: Caller) => {
      const parsed = spec.params.safeParse(raw ?? {});
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
        throw new JSONRPCErrorException(
          `invalid params for ${name}: ${where}${issue?.message ?? "not accepted"}`,
          JSONRPCErrorCode.InvalidParams,
          data("bad_request"),
        );
      }
      return spec.run(parsed.data, caller);
    });
  }
  return server;
}
