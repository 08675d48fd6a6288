import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Command } from "commander";
import { bashCompletion, commandTree, zshCompletion } from "../../bin/commands/completion.js";
import { buildProgram } from "../../bin/main.js";
import { Cache } from "../../core/client/cache.js";
import { ensureIdentity, profilePaths } from "../../core/client/profile.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { quietIo as io, ZMQCHAT_BIN } from "../helpers/cli.js";

function program(): Command {
  return buildProgram(io, () => {});
}

function allCommands(c: Command): Command[] {
  return [c, ...c.commands.flatMap(allCommands)];
}

const isHidden = (c: Command) => (c as unknown as { _hidden?: boolean })._hidden === true;

/** The commands a user sees (the completion scripts' own helper, complete-names, is hidden). */
function visibleCommands(c: Command): Command[] {
  return [c, ...c.commands.filter((x) => !isHidden(x)).flatMap(visibleCommands)];
}

function pathOf(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) names.unshift(x.name());
  return names.join(" ");
}

/** The help text exactly as `--help` prints it, including text added after it. */
function helpOf(c: Command): string {
  const parts: string[] = [];
  const write = (s: string) => {
    parts.push(s);
  };
  c.configureOutput({ writeOut: write, writeErr: write });
  c.outputHelp();
  return parts.join("");
}

/** Names of the visible subcommands at a path, sorted, straight from commander (the source of truth). */
function subcommands(path: string[], prefix = ""): string[] {
  let c = program();
  for (const name of path) c = c.commands.find((x) => x.name() === name)!;
  return c.commands
    .filter((x) => !isHidden(x))
    .map((x) => x.name())
    .filter((n) => n.startsWith(prefix))
    .sort();
}

function has(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

describe("help", () => {
  it("every command's --help has an example", () => {
    const missing = allCommands(program())
      .filter((c) => !/\nExamples?:\n {2}\S/.test(helpOf(c)))
      .map(pathOf);
    assert.deepEqual(missing, [], `commands whose help has no example: ${missing.join(", ")}`);
  });
});

describe("completion scripts", () => {
  let dir: string;
  let bashScript: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "zmqchat-completion-"));
    bashScript = join(dir, "zmqchat.bash");
    writeFileSync(bashScript, bashCompletion(program()));
    mkdirSync(join(dir, "files", "homes"), { recursive: true });
    writeFileSync(join(dir, "files", "hello.json"), "{}");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("cover every visible command and subcommand of the commander tree", () => {
    const tree = commandTree(program());
    const paths: string[] = [];
    const walk = (n: typeof tree) => {
      paths.push(n.path.join(" "));
      n.commands.forEach(walk);
    };
    walk(tree);
    const expected = visibleCommands(program()).map((c) => pathOf(c).replace(/^zmqchat ?/, ""));
    assert.deepEqual(paths.sort(), expected.sort());
    assert.ok(
      paths.includes("group create") && paths.includes("keys trust") && paths.includes("config show"),
    );
    const up = tree.commands.find((c) => c.path[0] === "up")!;
    assert.ok(!up.options.some((o) => o.long === "--supervise"), "hidden options stay hidden");
  });

  /** Completes the words as bash would for `zmqchat WORDS<TAB>`; the last word is the one being completed. */
  function bashComplete(words: string[], withBinary = false): string[] {
    const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(" ");
    const out = execFileSync(
      "bash",
      [
        "--norc",
        "--noprofile",
        "-c",
        `${withBinary ? `ZC_NODE="$3" ZC_BIN="$4"; zmqchat() { "$ZC_NODE" "$ZC_BIN" "$@"; }; ` : ""}source "$1"; cd "$2"; COMP_WORDS=(zmqchat ${quoted}); COMP_CWORD=${words.length}; _zmqchat; printf '%s\\n' "\${COMPREPLY[@]}"`,
        "bash",
        bashScript,
        join(dir, "files"),
        process.execPath,
        ZMQCHAT_BIN,
      ],
      { encoding: "utf8" },
    );
    return out.split("\n").filter(Boolean).sort();
  }

  it("bash: registers itself for zmqchat", () => {
    const out = execFileSync(
      "bash",
      ["--norc", "--noprofile", "-c", `source "$1"; complete -p zmqchat`, "bash", bashScript],
      {
        encoding: "utf8",
      },
    );
    assert.equal(out.trim(), "complete -F _zmqchat zmqchat");
  });

  it("bash: completes commands, subcommands, options and values", () => {
    assert.deepEqual(bashComplete(["gr"]), ["group", "groups"]);
    assert.deepEqual(bashComplete(["s"]), subcommands([], "s"));
    assert.ok(bashComplete(["s"]).includes("search"));
    assert.deepEqual(bashComplete([""]), subcommands([]));
    // Every group subcommand the program has (the list grows: rename, owner, admin came with #17).
    assert.deepEqual(bashComplete(["group", ""]), subcommands(["group"]));
    for (const sub of ["accept", "create", "leave", "rename", "owner", "admin"])
      assert.ok(bashComplete(["group", ""]).includes(sub), sub);
    assert.deepEqual(bashComplete(["keys", "t"]), ["trust"]);
    assert.deepEqual(bashComplete(["config", ""]), ["show"]);
    assert.deepEqual(bashComplete(["completion", ""]), ["bash", "zsh"]);
    // search's own long options, the global ones (all but --version), and --help.
    const globals = program()
      .options.map((o) => o.long)
      .filter((o): o is string => o !== undefined && o !== "--version");
    assert.deepEqual(
      bashComplete(["search", "--"]),
      [...new Set(["--from", "--group", "--limit", "--json", "--help", ...globals])].sort(),
    );
    assert.ok(globals.includes("--home") && globals.includes("--user"));
    assert.deepEqual(bashComplete(["up", "--s"]), ["--servers", "--store"]);
    assert.deepEqual(bashComplete(["--v"]), ["--version"]);
    assert.deepEqual(bashComplete(["group", "create", "--v"]), [], "--version belongs to the top level only");
  });

  it("bash: skips option values while finding the command, and completes paths for path options", () => {
    assert.deepEqual(bashComplete(["--home", "/x", "--user", "group", "gr"]), ["group", "groups"]);
    assert.deepEqual(bashComplete(["--user", "alice", "keys", ""]), subcommands(["keys"]));
    assert.deepEqual(bashComplete(["--config", "he"]), ["hello.json"]);
    assert.deepEqual(bashComplete(["--home", "h"]), ["homes"], "directories only");
    assert.deepEqual(bashComplete(["search", "--from", ""]), [], "no guesses for a user name");
    // A positional argument named <file> completes file names.
    const withFileArg = allCommands(program()).find((c) =>
      c.registeredArguments.some((a) => a.name() === "file"),
    );
    if (withFileArg)
      assert.deepEqual(bashComplete([...pathOf(withFileArg).split(" ").slice(1), "he"]), ["hello.json"]);
  });

  /** A home with ann's profile: contacts bob and carol, and a conversation in group team. */
  function namesHome(): string {
    const home = join(dir, "names-home");
    if (existsSync(home)) return home;
    const paths = profilePaths(home, "ann");
    ensureIdentity(paths, "ann");
    const cache = new Cache(paths.cache);
    for (const n of ["bob", "carol"]) cache.see(n, generateIdentity(n).publicKeys);
    cache.addMessages(
      [
        {
          id: "0190b2c4-0000-7000-8000-000000000001",
          conv: "g:team",
          from: "dave",
          to: null,
          group: "team",
          text: "hi team",
          sentAt: "2025-06-02T10:00:00.000Z",
          serverTime: "2025-06-02T10:00:00.000Z",
          cursor: "1",
          verified: true,
          problem: null,
          seq: 1,
          device: "0123456789abcdef",
        },
      ],
      "1",
    );
    void cache.close();
    return home;
  }

  it("bash: completes user, group and profile names from the local cache (built CLI)", () => {
    const home = namesHome();
    const at = ["--home", home, "--user", "ann"];
    assert.deepEqual(bashComplete([...at, "send", ""], true), ["bob", "carol"]);
    assert.deepEqual(bashComplete([...at, "send", "bob", ""], true), [], "the text is not a name");
    assert.deepEqual(bashComplete([...at, "send", "--group", ""], true), ["team"]);
    assert.deepEqual(bashComplete([...at, "history", "c"], true), ["carol"]);
    assert.deepEqual(bashComplete([...at, "search", "--from", "b"], true), ["bob"]);
    assert.deepEqual(bashComplete([...at, "keys", "trust", ""], true), ["bob", "carol"]);
    assert.deepEqual(bashComplete([...at, "group", "add", "team", "bob", ""], true), ["bob", "carol"]);
    assert.deepEqual(bashComplete(["--home", home, "--user", ""], true), ["ann"], "profiles here");
    // Without --user: the names of every profile here.
    assert.deepEqual(bashComplete(["--home", home, "keys", "fingerprint", ""], true), ["bob", "carol"]);
  });

  it("zsh: the script parses (zsh -n) and registers itself with compinit", (t) => {
    if (!has("zsh")) {
      if (process.getuid?.() === 0) {
        execFileSync("apt-get", ["install", "-y", "-qq", "zsh"], {
          stdio: "ignore",
          env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
        });
      } else {
        t.skip("zsh is not installed (apt-get install zsh): the zsh script was not checked");
        return;
      }
    }
    const zshScript = join(dir, "_zmqchat");
    writeFileSync(zshScript, zshCompletion(program()));
    const syntax = spawnSync("zsh", ["-n", zshScript], { encoding: "utf8" });
    assert.equal(syntax.status, 0, syntax.stderr);
    const loaded = spawnSync(
      "zsh",
      [
        "-f",
        "-c",
        `autoload -U compinit && compinit -u -D && source "$1" && print -r -- $_comps[zmqchat]`,
        "zsh",
        zshScript,
      ],
      { encoding: "utf8" },
    );
    assert.equal(loaded.status, 0, loaded.stderr);
    assert.equal(loaded.stdout.trim(), "_zmqchat");
  });

  it("zsh: completes commands, subcommands, options and argument choices in a real zsh", (t) => {
    if (!has("zsh")) {
      t.skip("zsh is not installed (apt-get install zsh): zsh completion was not exercised");
      return;
    }
    const zshScript = join(dir, "_zmqchat");
    writeFileSync(zshScript, zshCompletion(program()));
    const setup = join(dir, "setup.zsh");
    const capture = join(dir, "capture.zsh");
    // A zsh in a pseudo-terminal (zpty) types the line and TAB; compadd is wrapped to print the
    // matches between two NUL lines, then the shell exits.
    writeFileSync(
      setup,
      `PROMPT=
autoload -U compinit
compinit -u -D
bindkey '^I' complete-word
null-line () { echo -E - $'\\0' }
compprefuncs=( null-line )
comppostfuncs=( null-line exit )
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
zmqchat () { "$ZC_NODE" "$ZC_BIN" "$@" }
compadd () {
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then
    builtin compadd "$@"
    return $?
  fi
  typeset -a __hits
  builtin compadd -A __hits "$@"
  local h
  for h in $__hits; do echo -E - "$h"; done
}
source "$ZC_SCRIPT"
echo ok
`,
    );
    writeFileSync(
      capture,
      `zmodload zsh/zpty
zpty z zsh -f -i
local line
zpty -w z "source \${(q)ZC_SETUP}"
repeat 20; do
  zpty -r z line
  [[ $line == ok* ]] && break
done
[[ $line == ok* ]] || { echo 'the completion shell did not start' >&2; exit 2 }
zpty -w z "$*"$'\\t'
integer tog=0
while zpty -r z; do :; done | while IFS= read -r line; do
  if [[ $line == *$'\\0\\r' ]]; then
    (( tog++ )) && exit 0 || continue
  fi
  (( tog )) && echo -E - "$line"
done
exit 2
`,
    );
    const complete = (line: string): string[] => {
      const r = spawnSync("zsh", ["-f", capture, line], {
        encoding: "utf8",
        // A hang guard, not a timing: under a loaded CI machine (load 13 here) a completion that runs
        // the CLI for names took over 20 s once.
        timeout: 60_000,
        env: {
          ...process.env,
          ZC_SCRIPT: zshScript,
          ZC_SETUP: setup,
          ZC_NODE: process.execPath,
          ZC_BIN: ZMQCHAT_BIN,
        },
      });
      assert.equal(r.status, 0, `zsh completion of "${line}": ${r.stderr}`);
      return r.stdout
        .split("\n")
        .map((l) => l.replace(/\r$/, ""))
        .filter(Boolean)
        .sort();
    };
    assert.deepEqual(complete("zmqchat gr"), ["group", "groups"]);
    assert.deepEqual(complete("zmqchat group "), subcommands(["group"]));
    assert.ok(complete("zmqchat group ").includes("rename"));
    assert.deepEqual(complete("zmqchat --user alice keys "), subcommands(["keys"]));
    assert.deepEqual(complete("zmqchat "), subcommands([]));
    assert.deepEqual(complete("zmqchat completion "), ["bash", "zsh"]);
    const home = namesHome();
    assert.deepEqual(complete(`zmqchat --home ${home} --user ann keys trust `), ["bob", "carol"]);
    assert.deepEqual(complete(`zmqchat --home ${home} --user ann send --group `), ["team"]);
    const searchOpts = complete("zmqchat search --");
    for (const o of ["--from", "--group", "--limit", "--json", "--user", "--home", "--help"]) {
      assert.ok(searchOpts.includes(o), `${o} in ${searchOpts.join(" ")}`);
    }
  });
});
