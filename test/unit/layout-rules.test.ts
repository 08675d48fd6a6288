import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

/**
 * The layout rules of DESIGN.md, checked over the product folders: imports point one way,
 * only `transports/zeromq/` imports `zeromq`, only `bin/` exits, servers never import the
 * client, the TUI never touches sockets, and no module imports itself through others.
 * Type-only imports count: they are part of the map a reader follows.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const PRODUCT = ["bin", "core", "transports", "server", "balancer", "tui"] as const;

/** Which top-level folders of ours each folder may import (its own always). "*" is all. */
const MAY_IMPORT: Record<string, readonly string[] | "*"> = {
  bin: "*",
  core: [],
  transports: ["core"],
  server: ["core", "transports"],
  balancer: ["core", "transports"],
  tui: ["core"],
};

/** Modules through which code reaches the network. */
const SOCKET_MODULES = [
  "zeromq",
  "node:net",
  "node:dgram",
  "node:tls",
  "node:http",
  "node:https",
  "node:http2",
];

const IMPORT_PATTERNS = [
  // import x from "m"; import type { A } from "m"; export { a } from "m"; export * from "m"
  /^\s*(?:import|export)\s[^;"'`]*?\bfrom\s*["']([^"']+)["']/gm,
  // import "m";
  /^\s*import\s*["']([^"']+)["']/gm,
  // await import("m")
  /\bimport\(\s*["']([^"']+)["']\s*\)/g,
];

/** Every module specifier a source file names in an import or re-export. */
function importsOf(source: string): string[] {
  const found = new Set<string>();
  for (const pattern of IMPORT_PATTERNS) for (const m of source.matchAll(pattern)) found.add(m[1] as string);
  return [...found];
}

/** `a/b/c.ts` importing `../d.js` → `a/d.ts` (the source file, as tsc resolves NodeNext imports). */
function resolveRelative(from: string, specifier: string, files: ReadonlyMap<string, string>): string {
  const base = normalize(join(dirname(from), specifier)).replace(/\.js$/, "");
  for (const candidate of [`${base}.ts`, `${base}.tsx`, join(base, "index.ts")]) {
    if (files.has(candidate)) return candidate;
  }
  return `${base}.ts`;
}

function topOf(path: string): string {
  return path.split("/")[0] as string;
}

/**
 * Breaches of the layout rules in a set of sources (path relative to the repository → text).
 * Each breach is one line naming the file, what it did and the rule.
 */
function layoutViolations(files: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [file, source] of files) {
    const top = topOf(file);
    for (const spec of importsOf(source)) {
      if (spec.startsWith(".")) {
        const target = resolveRelative(file, spec, files);
        const targetTop = topOf(target);
        const allowed = MAY_IMPORT[top];
        if (targetTop !== top && allowed !== "*" && !allowed?.includes(targetTop)) {
          out.push(
            `${file} imports ${target}: ${top}/ may import ${allowed?.join(", ") || "nothing of ours"}`,
          );
        }
        if (top === "server" && target.startsWith("core/client/")) {
          out.push(`${file} imports ${target}: servers never import the client`);
        }
        if (top === "tui" && targetTop === "transports") {
          out.push(`${file} imports ${target}: the TUI never touches sockets`);
        }
      } else {
        if ((spec === "zeromq" || spec.startsWith("zeromq/")) && !file.startsWith("transports/zeromq/")) {
          out.push(`${file} imports ${spec}: only transports/zeromq/ imports zeromq`);
        }
        if (top === "tui" && SOCKET_MODULES.includes(spec)) {
          out.push(`${file} imports ${spec}: the TUI never touches sockets`);
        }
      }
    }
    if (top !== "bin" && /\bprocess\s*\.\s*(?:exit|reallyExit|abort)\s*\(/.test(source)) {
      out.push(`${file} calls process.exit: only bin/ exits`);
    }
    if (
      top !== "bin" &&
      /import\s*\{[^}]*\b(?:exit|abort)\b[^}]*\}\s*from\s*["'](?:node:)?process["']/.test(source)
    ) {
      out.push(`${file} imports exit from process: only bin/ exits`);
    }
  }
  return out;
}

/** The import cycles among the sources, each as its files in order (Tarjan's strongly connected components). */
function importCycles(files: ReadonlyMap<string, string>): string[][] {
  const edges = new Map<string, string[]>();
  for (const [file, source] of files) {
    edges.set(
      file,
      importsOf(source)
        .filter((s) => s.startsWith("."))
        .map((s) => resolveRelative(file, s, files))
        .filter((t) => files.has(t)),
    );
  }
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || edges.get(v)?.includes(v)) cycles.push(component.reverse());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

function productSources(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(ROOT, dir))) {
      const path = join(dir, name);
      if (statSync(join(ROOT, path)).isDirectory()) walk(path);
      else if (/\.tsx?$/.test(name) && !name.endsWith(".d.ts"))
        files.set(path, readFileSync(join(ROOT, path), "utf8"));
    }
  };
  for (const top of PRODUCT) walk(top);
  return files;
}

describe("layout rules (DESIGN.md)", () => {
  it("the import scanner sees every form of import", () => {
    const source = [
      'import a from "./a.js";',
      'import type { B } from "../b.js";',
      "import {",
      "  c,",
      "  type D,",
      '} from "./c.js";',
      'import "./side-effect.js";',
      'export { e } from "./e.js";',
      'export * from "./f.js";',
      'const g = await import("./g.js");',
      'import * as h from "zeromq";',
      '/** text that says "from" but imports nothing */',
    ].join("\n");
    assert.deepEqual(importsOf(source).sort(), [
      "../b.js",
      "./a.js",
      "./c.js",
      "./e.js",
      "./f.js",
      "./g.js",
      "./side-effect.js",
      "zeromq",
    ]);
  });

  it("detects each kind of breach in a synthetic tree (positive control)", () => {
    const files = new Map([
      ["core/ok.ts", 'import { z } from "zod";\nimport { x } from "./x.js";'],
      ["core/x.ts", "export const x = 1;"],
      ["core/bad.ts", 'import { serve } from "../server/server.js";'],
      ["server/server.ts", 'import { ChatClient } from "../core/client/client.js";'],
      ["core/client/client.ts", "export class ChatClient {}"],
      ["server/sock.ts", 'import { Dealer } from "zeromq";'],
      ["balancer/quit.ts", "function stop() {\n  process.exit(1);\n}"],
      ["tui/net.tsx", 'import { connect } from "node:net";'],
      ["tui/zmq.ts", 'const t = await import("../transports/zeromq/index.js");'],
      ["transports/zeromq/index.ts", 'import { Dealer } from "zeromq";'],
      ["transports/up.ts", 'export { b } from "../balancer/b.js";'],
      ["balancer/b.ts", "export const b = 1;"],
      ["bin/main.ts", 'import { b } from "../balancer/b.js";\nprocess.exit(0);'],
    ]);
    assert.deepEqual(layoutViolations(files).sort(), [
      "balancer/quit.ts calls process.exit: only bin/ exits",
      "core/bad.ts imports server/server.ts: core/ may import nothing of ours",
      "server/server.ts imports core/client/client.ts: servers never import the client",
      "server/sock.ts imports zeromq: only transports/zeromq/ imports zeromq",
      "transports/up.ts imports balancer/b.ts: transports/ may import core",
      "tui/net.tsx imports node:net: the TUI never touches sockets",
      "tui/zmq.ts imports transports/zeromq/index.ts: the TUI never touches sockets",
      "tui/zmq.ts imports transports/zeromq/index.ts: tui/ may import core",
    ]);
  });

  it("detects an import cycle, also through type-only imports (positive control)", () => {
    const files = new Map([
      ["core/client/cache.ts", 'import { SearchIndex } from "./search.js";'],
      ["core/client/search.ts", 'import type { Cache } from "./cache.js";\nimport { t } from "../text.js";'],
      ["core/text.ts", "export const t = 1;"],
      ["tui/a.ts", 'import "./b.js";'],
      ["tui/b.ts", 'import "./c.js";'],
      ["tui/c.ts", 'import "./a.js";'],
    ]);
    assert.deepEqual(
      importCycles(files).map((c) => [...c].sort()),
      [
        ["core/client/cache.ts", "core/client/search.ts"],
        ["tui/a.ts", "tui/b.ts", "tui/c.ts"],
      ],
    );
  });

  const sources = productSources();

  it("reads the whole product tree", () => {
    for (const top of PRODUCT) {
      assert.ok(
        [...sources.keys()].some((f) => topOf(f) === top),
        `no source file found under ${top}/`,
      );
    }
    assert.ok(sources.has("transports/zeromq/client.ts"));
    assert.ok(sources.has("bin/zmqchat.ts"));
  });

  it("every product file keeps the import, exit and socket rules", () => {
    assert.deepEqual(layoutViolations(sources), []);
  });

  it("every relative import names a file that exists", () => {
    const missing: string[] = [];
    for (const [file, source] of sources) {
      for (const spec of importsOf(source).filter((s) => s.startsWith("."))) {
        const target = resolveRelative(file, spec, sources);
        if (PRODUCT.includes(topOf(target) as (typeof PRODUCT)[number]) && !sources.has(target)) {
          missing.push(`${file} → ${spec}`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  it("the product has no import cycles", () => {
    assert.deepEqual(importCycles(sources), []);
  });
});
