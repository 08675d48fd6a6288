import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One point of line protocol, as far as the fake needs it (no escapes inside tag values). */
export interface FakePoint {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, string | boolean | number>;
  ts: bigint;
}

export type FakeAnswer = { status: number; body?: string } | undefined;

/**
 * A fake InfluxDB v1 HTTP endpoint (`/ping`, `/write`, `/query`) on a free loopback port, for
 * testing each mechanism of the InfluxDB store alone. It records every write and query; tests
 * answer queries through `onQuery` (a JSON body) and may fail requests through `onWrite`.
 * `points` holds what was written, parsed.
 */
export class FakeV1 {
  readonly writes: string[] = [];
  readonly queries: string[] = [];
  readonly points: FakePoint[] = [];
  onWrite: (body: string) => FakeAnswer | Promise<FakeAnswer> = () => undefined;
  onQuery: (q: string) => unknown = () => ({ results: [{ statement_id: 0 }] });
  url = "";
  private server: Server | null = null;

  static async start(): Promise<FakeV1> {
    const fake = new FakeV1();
    fake.server = createServer((req, res) => {
      void fake.handle(req).then(
        ({ status, body }) => {
          res.writeHead(status, { "content-type": "application/json" }).end(body ?? "");
        },
        (err: unknown) => {
          res
            .writeHead(500, { "content-type": "application/json" })
            .end(JSON.stringify({ error: String(err) }));
        },
      );
    });
    await new Promise<void>((resolve) => fake.server!.listen(0, "127.0.0.1", resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  /** Mailbox points of `owner`, oldest first. */
  mailbox(owner: string): FakePoint[] {
    return this.points
      .filter((p) => p.measurement === "mailbox" && p.tags.owner === owner)
      .sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body?: string }> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const path = (req.url ?? "").split("?")[0];
    if (path === "/ping") return { status: 204 };
    if (path === "/write") {
      this.writes.push(body);
      const answer = await this.onWrite(body);
      if (answer) return answer;
      for (const line of body.split("\n")) if (line) this.points.push(parseLine(line));
      return { status: 204 };
    }
    if (path === "/query") {
      const q = new URLSearchParams(body).get("q") ?? "";
      this.queries.push(q);
      return {
        status: 200,
        body: JSON.stringify(await this.onQuery(q), bigintAsNumber).replace(/"(-?\d+)n"/g, "$1"),
      };
    }
    return { status: 404 };
  }
}

/** A /query answer: one statement's series (times as bigint stay exact). */
export function answer(
  ...statements: Array<
    Array<{ name?: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }>
  >
) {
  return {
    results: statements.map((series, i) =>
      series.length === 0
        ? { statement_id: i }
        : { statement_id: i, series: series.map((s) => ({ name: "m", ...s })) },
    ),
  };
}

function bigintAsNumber(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? `${value}n` : value;
}

function parseLine(line: string): FakePoint {
  const m = /^([^, ]+)((?:,[^, =]+=[^, ]+)*) (.*) (\d+)$/.exec(line);
  if (!m) throw new Error(`fake InfluxDB cannot parse ${line}`);
  const tags: Record<string, string> = {};
  for (const kv of (m[2] ?? "").split(",").filter(Boolean)) {
    const [k, v] = kv.split("=");
    tags[k!] = v!;
  }
  const fields: Record<string, string | boolean | number> = {};
  const re = /([^,= ]+)=("(?:[^"\\]|\\.)*"|[^,]+)/g;
  for (const f of (m[3] ?? "").matchAll(re)) {
    const raw = f[2]!;
    fields[f[1]!] = raw.startsWith('"')
      ? raw.slice(1, -1).replace(/\\(.)/g, "$1")
      : raw === "T" || raw === "true"
        ? true
        : raw === "F" || raw === "false"
          ? false
          : Number(raw.replace(/i$/, ""));
  }
  return { measurement: m[1]!, tags, fields, ts: BigInt(m[4]!) };
}
