import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { ZmqchatError } from "../../../core/errors.js";
import { parseRawJson, type RawJson, RawNumber } from "./raw-json.js";

export interface V1Connection {
  /** Base URL, `http(s)://host:port`. */
  url: string;
  db: string;
  /** Retention policy to write into and read from; the database's default when unset. */
  rp?: string | undefined;
  /** Write consistency on InfluxDB Enterprise clusters (`any`, `one`, `quorum`, `all`); OSS ignores it. */
  consistency?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  timeoutMs?: number;
}

/** One series of a /query answer; numbers stay as text (see raw-json.ts). */
export interface Series {
  name: string;
  tags: Record<string, string>;
  columns: string[];
  values: RawJson[][];
}

/**
 * InfluxDB's v1 HTTP API (`/ping`, `/write`, `/query`) over Node's own HTTP client with a
 * keep-alive agent. Raw: it neither retries nor interprets; failures come out as
 * {@link InfluxHttpError}. (It used @influxdata/influxdb-client's transport: measured here, that
 * cost 276 µs of CPU per write-and-query against 181 µs straight on node:http, and the store
 * makes some 0.3 requests per message.)
 */
export class V1Http {
  private readonly agent: HttpAgent;
  private readonly base: URL;
  private readonly request: typeof httpRequest;
  private readonly auth: string | undefined;
  private readonly writePath: string;
  private readonly timeoutMs: number;

  constructor(private readonly conn: V1Connection) {
    const https = conn.url.startsWith("https:");
    this.agent = https
      ? new HttpsAgent({ keepAlive: true, maxSockets: 8 })
      : new HttpAgent({ keepAlive: true, maxSockets: 8 });
    this.request = https ? (httpsRequest as typeof httpRequest) : httpRequest;
    this.base = new URL(conn.url);
    if (conn.username !== undefined) {
      this.auth = `Basic ${Buffer.from(`${conn.username}:${conn.password ?? ""}`).toString("base64")}`;
    } else if (conn.token !== undefined) {
      this.auth = `Token ${conn.token}`;
    }
    const params = new URLSearchParams({ db: conn.db, precision: "ns" });
    if (conn.rp) params.set("rp", conn.rp);
    if (conn.consistency) params.set("consistency", conn.consistency);
    this.writePath = `/write?${params}`;
    this.timeoutMs = conn.timeoutMs ?? 10_000;
  }

  get description(): string {
    return `InfluxDB at ${this.conn.url} (database ${this.conn.db})`;
  }

  async ping(): Promise<void> {
    await this.send("GET", "/ping", null, null, () => undefined);
  }

  /** Writes line protocol with nanosecond timestamps; resolves when InfluxDB answered 204. */
  async write(lines: string): Promise<void> {
    await this.send("POST", this.writePath, lines, "text/plain; charset=utf-8", () => undefined);
  }

  /**
   * Runs InfluxQL (one or more statements) with `epoch=ns`. Returns the series of each
   * statement; an `error` inside any result (InfluxDB still answers 200) throws.
   */
  async query(q: string, options: { db?: boolean } = {}): Promise<Series[][]> {
    const params = new URLSearchParams({ q, epoch: "ns" });
    if (options.db !== false) params.set("db", this.conn.db);
    return this.send("POST", "/query", params.toString(), "application/x-www-form-urlencoded", (body) =>
      parseQueryResponse(body, q),
    );
  }

  close(): void {
    this.agent.destroy();
  }

  /** Where answers are joined (see joinChunks). */
  private scratch = Buffer.alloc(0);

  /**
   * An answer's body in one buffer, for reading at once. A fresh buffer for each answer cost more
   * than all the rest of reading it: a recovery's page answers some 850 KB, and Buffer.concat into
   * new memory took 5 ms a page against 0.03 ms copied into memory already in use (measured here;
   * fresh large allocations fault their pages in). So answers are joined in one buffer, reused by
   * the next: the reader must be done with it when it returns (parsing copies out what it keeps).
   */
  private joinChunks(chunks: Buffer[]): Buffer {
    if (chunks.length === 1) return chunks[0]!;
    let size = 0;
    for (const c of chunks) size += c.length;
    if (size > SCRATCH_MAX) return Buffer.concat(chunks, size);
    if (this.scratch.length < size)
      this.scratch = Buffer.allocUnsafeSlow(Math.max(size, 2 * this.scratch.length, 64 * 1024));
    let at = 0;
    for (const c of chunks) at += c.copy(this.scratch, at);
    return this.scratch.subarray(0, size);
  }

  /**
   * One exchange. `read` gets a 2xx answer's body and must be done with it when it returns: the
   * bytes may lie in a buffer that the next answer reuses (see joinChunks).
   */
  private send<T>(
    method: string,
    path: string,
    body: string | null,
    type: string | null,
    read: (body: Buffer) => T,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = {};
      if (this.auth !== undefined) headers.authorization = this.auth;
      if (body !== null) {
        headers["content-type"] = type ?? "text/plain";
        headers["content-length"] = Buffer.byteLength(body);
      }
      let done = false;
      const fail = (err: InfluxHttpError) => {
        if (done) return;
        done = true;
        reject(err);
      };
      let req: ClientRequest;
      try {
        req = this.request(
          {
            protocol: this.base.protocol,
            hostname: this.base.hostname,
            port: this.base.port,
            path: `${this.base.pathname.replace(/\/$/, "")}${path}`,
            method,
            headers,
            agent: this.agent,
          },
          (res: IncomingMessage) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("error", (err) => fail(InfluxHttpError.from(err)));
            res.on("end", () => {
              if (done) return;
              const status = res.statusCode ?? 0;
              if (status >= 200 && status < 300) {
                done = true;
                try {
                  resolve(read(this.joinChunks(chunks)));
                } catch (err) {
                  reject(err);
                }
                return;
              }
              const detail =
                influxErrorText(Buffer.concat(chunks).toString("utf8")) ?? res.statusMessage ?? "";
              fail(new InfluxHttpError(`HTTP ${status}: ${detail}`, status, status >= 500 || status === 429));
            });
          },
        );
      } catch (err) {
        fail(InfluxHttpError.from(err));
        return;
      }
      req.setTimeout(this.timeoutMs, () => {
        fail(new InfluxHttpError("request timed out", 0, true));
        req.destroy();
      });
      req.on("error", (err) => fail(InfluxHttpError.from(err)));
      req.end(body ?? undefined);
    });
  }
}

/** Answers up to this size are joined in the reused buffer (see V1Http.joinChunks); larger ones get their own. */
const SCRATCH_MAX = 16 * 1024 * 1024;

/** A failed exchange with InfluxDB, classified for retrying. */
export class InfluxHttpError extends Error {
  constructor(
    message: string,
    /** HTTP status, or 0 when no answer came (refused, reset, timed out). */
    readonly status: number,
    /** Worth trying again: no answer, 5xx, 429. 4xx (bad data, auth, partial write) is not. */
    readonly retryable: boolean,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = "InfluxHttpError";
  }

  static from(err: unknown): InfluxHttpError {
    if (err instanceof InfluxHttpError) return err;
    const e = err as NodeJS.ErrnoException;
    return new InfluxHttpError(e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? err), 0, true, {
      cause: err,
    });
  }
}

function influxErrorText(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
    if (typeof parsed.message === "string") return parsed.message;
  } catch {
    // not JSON
  }
  return body.slice(0, 500);
}

export function parseQueryResponse(body: string | Uint8Array, q: string): Series[][] {
  let doc: RawJson;
  try {
    doc = parseRawJson(body);
  } catch (cause) {
    throw new InfluxHttpError(`unreadable /query answer: ${(cause as Error).message}`, 200, false, { cause });
  }
  const top = asObject(doc);
  if (typeof top.error === "string") throw new InfluxHttpError(`query failed: ${top.error}`, 200, false);
  const results = top.results;
  if (!Array.isArray(results)) throw new InfluxHttpError("a /query answer without results", 200, false);
  return results.map((r) => {
    const result = asObject(r);
    if (typeof result.error === "string") {
      throw new InfluxHttpError(`query failed: ${result.error} (in: ${q.slice(0, 200)})`, 200, false);
    }
    const series = result.series;
    if (series === undefined) return [];
    if (!Array.isArray(series)) throw new InfluxHttpError("malformed series in a /query answer", 200, false);
    return series.map((s) => {
      const o = asObject(s);
      const tags: Record<string, string> = {};
      for (const [k, v] of Object.entries(o.tags && !Array.isArray(o.tags) ? asObject(o.tags) : {})) {
        if (typeof v === "string") tags[k] = v;
      }
      const columns = Array.isArray(o.columns)
        ? o.columns.filter((c): c is string => typeof c === "string")
        : [];
      const values = Array.isArray(o.values) ? o.values.filter((v): v is RawJson[] => Array.isArray(v)) : [];
      return { name: typeof o.name === "string" ? o.name : "", tags, columns, values };
    });
  });
}

function asObject(v: RawJson | undefined): { [key: string]: RawJson } {
  if (v === null || v === undefined || typeof v !== "object" || Array.isArray(v) || v instanceof RawNumber) {
    throw new InfluxHttpError("malformed /query answer", 200, false);
  }
  return v;
}

/** Rows of a series as objects keyed by column; numbers stay RawNumber. */
export function rows(series: Series): Record<string, RawJson>[] {
  return series.values.map((v) => {
    const row: Record<string, RawJson> = {};
    series.columns.forEach((c, i) => {
      row[c] = v[i] ?? null;
    });
    return row;
  });
}

/** The `time` column (epoch=ns) as an exact bigint. */
export function timeOf(row: Record<string, RawJson>): bigint {
  const t = row.time;
  if (!(t instanceof RawNumber) || !/^-?[0-9]+$/.test(t.text))
    throw new InfluxHttpError("a row without an integer time", 200, false);
  return BigInt(t.text);
}

/** Maps a failure to the error a Store caller sees. */
export function storeError(err: unknown, what: string, where: string): ZmqchatError {
  if (err instanceof ZmqchatError) return err;
  const e = InfluxHttpError.from(err);
  if (e.status === 401 || e.status === 403) {
    return new ZmqchatError(
      "unavailable",
      `${where} refused the credentials while trying to ${what} (${e.message})`,
      {
        cause: e,
        hint: "set ZMQCHAT_INFLUX_USER and ZMQCHAT_INFLUX_PASSWORD (InfluxDB 1.x) or ZMQCHAT_INFLUX_TOKEN (2.x/3.x) to an account that may read and write the database",
      },
    );
  }
  if (e.status === 0) {
    return new ZmqchatError("unavailable", `cannot reach ${where} to ${what}: ${e.message}`, {
      cause: e,
      hint: "is influxd running, and is the store URL's host and port right?",
    });
  }
  return new ZmqchatError("unavailable", `${where} failed to ${what}: ${e.message}`, { cause: e });
}
