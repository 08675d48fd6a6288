import type { Argument, Command, Option } from "commander";
import { ZmqchatError } from "../../core/errors.js";
import type { Io } from "../io.js";
import type { NameKind } from "./complete-names.js";

/** What completion needs to know about one option. */
interface OptSpec {
  short: string | null;
  long: string | null;
  description: string;
  /** The value's placeholder (`name` of `<name>`), or null for a switch. */
  value: string | null;
  /** What to offer for the value: listed choices, files, directories, names from the local cache, or nothing. */
  complete: { choices: string[] } | "file" | "dir" | NameKind | null;
}

interface ArgSpec {
  name: string;
  description: string;
  required: boolean;
  variadic: boolean;
  choices: string[];
  /** Named like a path (`<file>`, `<dir>`): complete file names. */
  path: "file" | "dir" | null;
  /** Named like a user or group (`<user>`, `<members...>`, `<group>`): names from the local cache. */
  names: NameKind | null;
}

/** Which names a value or argument called `placeholder` takes. */
function namesOf(placeholder: string, global: boolean): NameKind | null {
  if (/^(user|users|member|members|from|to)$/i.test(placeholder)) return "users";
  if (/^(group|groups)$/i.test(placeholder)) return "groups";
  // The global --user <name> picks one of the profiles here.
  if (global && /^name$/i.test(placeholder)) return "profiles";
  return null;
}

/** One command of the tree: its path from the root, its own subcommands, options and arguments. */
interface CmdSpec {
  path: string[];
  description: string;
  commands: CmdSpec[];
  options: OptSpec[];
  args: ArgSpec[];
}

const HELP: OptSpec = {
  short: "-h",
  long: "--help",
  description: "display help",
  value: null,
  complete: null,
};
const VERSION: OptSpec = {
  short: "-V",
  long: "--version",
  description: "output the version number",
  value: null,
  complete: null,
};

function optSpec(o: Option, global = false): OptSpec {
  const placeholder = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1] ?? null;
  const takesValue = o.required || o.optional;
  let complete: OptSpec["complete"] = null;
  if (o.argChoices && o.argChoices.length > 0) complete = { choices: [...o.argChoices] };
  else if (placeholder && /^(dir|directory)$/i.test(placeholder)) complete = "dir";
  else if (placeholder && /^(file|path)$/i.test(placeholder)) complete = "file";
  else if (placeholder) complete = namesOf(placeholder, global && o.long === "--user");
  return {
    short: o.short ?? null,
    long: o.long ?? null,
    description: o.description,
    value: takesValue ? (placeholder ?? "value") : null,
    complete: takesValue ? complete : null,
  };
}

function argSpec(a: Argument): ArgSpec {
  return {
    name: a.name(),
    description: a.description,
    required: a.required,
    variadic: a.variadic,
    choices: a.argChoices ? [...a.argChoices] : [],
    path: /^(dir|directory)$/i.test(a.name()) ? "dir" : /^(file|path)$/i.test(a.name()) ? "file" : null,
    names: namesOf(a.name(), false),
  };
}

/**
 * The command tree as completion sees it, read from commander: hidden commands and options are
 * left out; the root's options (global: commander takes them anywhere) are added to every command.
 */
export function commandTree(program: Command): CmdSpec {
  const visible = (c: Command) => !(c as unknown as { _hidden?: boolean })._hidden;
  // The version option is the root's alone; the help option is not in `options`: both are added below.
  const globals = program.options
    .filter((o) => !o.hidden && o.long !== "--version")
    .map((o) => optSpec(o, true));
  const walk = (c: Command, path: string[]): CmdSpec => ({
    path,
    description: c.description(),
    commands: c.commands.filter(visible).map((s) => walk(s, [...path, s.name()])),
    options:
      path.length === 0
        ? [...globals, HELP, VERSION]
        : [...c.options.filter((o) => !o.hidden).map((o) => optSpec(o)), ...globals, HELP],
    args: c.registeredArguments.map(argSpec),
  });
  return walk(program, []);
}

function allNodes(n: CmdSpec): CmdSpec[] {
  return [n, ...n.commands.flatMap(allNodes)];
}

const names = (o: OptSpec) => [o.short, o.long].filter((x): x is string => x !== null);

/** A bash completion script: `source <(zmqchat completion bash)`. */
export function bashCompletion(program: Command): string {
  const root = commandTree(program);
  const bin = program.name();
  const fn = `_${bin.replace(/\W/g, "_")}`;
  const cases: string[] = [];
  const valueCases: string[] = [];
  for (const n of allNodes(root)) {
    const key = n.path.join(" ");
    const withValue = n.options.filter((o) => o.value !== null);
    cases.push(
      [
        `    ${JSON.stringify(key)})`,
        `      subs=${JSON.stringify(n.commands.map((c) => c.path.at(-1)).join(" "))}`,
        `      opts=${JSON.stringify(n.options.flatMap(names).join(" "))}`,
        `      valopts=${JSON.stringify(withValue.flatMap(names).join(" "))}`,
        `      choices=${JSON.stringify([...new Set(n.args.flatMap((a) => a.choices))].join(" "))}`,
        `      paths=${JSON.stringify(n.args.some((a) => a.path === "file") ? "-f" : n.args.some((a) => a.path === "dir") ? "-d" : "")}`,
        `      argnames=${JSON.stringify(n.args.map((a) => a.names ?? "-").join(" "))}`,
        `      restnames=${JSON.stringify(n.args.at(-1)?.variadic ? (n.args.at(-1)!.names ?? "") : "")}`,
        "      ;;",
      ].join("\n"),
    );
    for (const o of withValue) {
      if (o.complete === null) continue;
      const action =
        o.complete === "file"
          ? 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))'
          : o.complete === "dir"
            ? 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))'
            : typeof o.complete === "string"
              ? `COMPREPLY=($(compgen -W "$(${fn}_names ${o.complete})" -- "$cur"))`
              : `COMPREPLY=($(compgen -W ${JSON.stringify(o.complete.choices.join(" "))} -- "$cur"))`;
      for (const name of names(o)) valueCases.push(`    ${JSON.stringify(`${key}|${name}`)}) ${action} ;;`);
    }
  }
  return `# bash completion for ${bin}, generated from its commands by \`${bin} completion bash\`.
# Load it in the current shell:   source <(${bin} completion bash)
# or for every shell:              ${bin} completion bash > ~/.local/share/bash-completion/completions/${bin}

# Sets subs, opts, valopts, choices and paths (compgen -f / -d for path arguments) for the command path in $1.
${fn}_node() {
  case "$1" in
${cases.join("\n")}
    *) subs="" opts="" valopts="" choices="" paths="" argnames="" restnames="" ;;
  esac
}

# User, group or profile names from the local cache (${bin} complete-names; never the network),
# for the --home, --user and --config given on the command line so far.
${fn}_names() {
  ${bin} "\${globals[@]}" complete-names "$1" 2>/dev/null
}

${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" node="" w i skip=0 pos=0 subs opts valopts choices paths argnames restnames
  local -a globals=()
  COMPREPLY=()
  ${fn}_node ""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if ((skip)); then
      skip=0
      [[ $w == "=" ]] && skip=1
      continue
    fi
    if [[ $w == -* ]]; then
      [[ $w != *=* && " $valopts " == *" $w "* ]] && skip=1
      case "$w" in
        --home | --user | -u | --config) ((i + 1 < COMP_CWORD)) && globals+=("$w" "\${COMP_WORDS[i + 1]}") ;;
      esac
    elif [[ " $subs " == *" $w "* ]]; then
      node="\${node:+$node }$w"
      ${fn}_node "$node"
      pos=0
    else
      ((pos++))
    fi
  done
  if ((skip)); then
    local prev="\${COMP_WORDS[COMP_CWORD - 1]}"
    [[ $prev == "=" ]] && prev="\${COMP_WORDS[COMP_CWORD - 2]}"
    [[ $cur == "=" ]] && cur=""
    case "$node|$prev" in
${valueCases.join("\n")}
    esac
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$subs $choices" -- "$cur"))
    local -a kinds=($argnames)
    local kind="\${kinds[pos]:-$restnames}"
    if [[ -n $kind && $kind != "-" ]]; then
      COMPREPLY+=($(compgen -W "$(${fn}_names "$kind")" -- "$cur"))
    fi
    if [[ -n $paths ]]; then
      compopt -o filenames 2>/dev/null
      COMPREPLY+=($(compgen "$paths" -- "$cur"))
    fi
  fi
  return 0
}

complete -F ${fn} ${bin}
`;
}

/** A single-quoted zsh word. */
function zq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Text for inside `[...]` of an _arguments spec: brackets escaped, one line. */
function zdesc(s: string): string {
  return s.replace(/\s+/g, " ").replace(/([[\]\\])/g, "\\$1");
}

function zshOptSpec(o: OptSpec, bin: string): string {
  const action =
    o.value === null
      ? ""
      : `:${o.value}:${
          o.complete === null
            ? " "
            : o.complete === "file"
              ? "_files"
              : o.complete === "dir"
                ? "_files -/"
                : typeof o.complete === "string"
                  ? `{_${bin}_names ${o.complete}}`
                  : `(${o.complete.choices.join(" ")})`
        }`;
  const desc = `[${zdesc(o.description)}]${action}`;
  const both = names(o);
  if (both.length === 2) return `${zq(`(${both.join(" ")})`)}{${both.join(",")}}${zq(desc)}`;
  return zq(`${both[0]}${desc}`);
}

function zshArgSpec(a: ArgSpec, i: number, bin: string): string {
  const action =
    a.choices.length > 0
      ? `(${a.choices.join(" ")})`
      : a.path === "file"
        ? "_files"
        : a.path === "dir"
          ? "_files -/"
          : a.names
            ? `{_${bin}_names ${a.names}}`
            : " ";
  const msg = a.name.replace(/:/g, "\\:");
  if (a.variadic) return zq(`*:${msg}:${action}`);
  return zq(`${i + 1}:${a.required ? "" : ":"}${msg}:${action}`);
}

/** A zsh completion script: `source <(zmqchat completion zsh)` after compinit, or saved as `_zmqchat` in $fpath. */
export function zshCompletion(program: Command): string {
  const root = commandTree(program);
  const bin = program.name();
  const fnOf = (n: CmdSpec) => `_${[bin, ...n.path].join("_").replace(/\W/g, "_")}`;
  const fns: string[] = [];
  for (const n of allNodes(root)) {
    const fn = fnOf(n);
    const specs = n.options.map((o) => zshOptSpec(o, bin));
    if (n.commands.length === 0) {
      specs.push(...n.args.map((a, i) => zshArgSpec(a, i, bin)));
      fns.push(`${fn}() {\n  _arguments -s -S \\\n    ${specs.join(" \\\n    ")}\n}`);
      continue;
    }
    const entries = n.commands.map((c) => zq(`${c.path.at(-1)}:${c.description.replace(/\s+/g, " ")}`));
    const dispatch = n.commands.map((c) => `        ${c.path.at(-1)}) ${fnOf(c)} ;;`);
    fns.push(`${fn}() {
  local curcontext="$curcontext" state line ret=1
  typeset -A opt_args
  _arguments -C -s -S \\
    ${specs.join(" \\\n    ")} \\
    '1: :->command' \\
    '*:: :->args' && ret=0
  case $state in
    command)
      local -a commands
      commands=(
        ${entries.join("\n        ")}
      )
      _describe -t commands ${zq(`${[bin, ...n.path].join(" ")} command`)} commands && ret=0
      ;;
    args)
      curcontext="\${curcontext%:*:*}:${[bin, ...n.path].join("-")}-$words[1]:"
      case $words[1] in
${dispatch.join("\n")}
      esac
      ;;
  esac
  return ret
}`);
  }
  return `#compdef ${bin}
# zsh completion for ${bin}, generated from its commands by \`${bin} completion zsh\`.
# Load it in the current shell (after compinit):   source <(${bin} completion zsh)
# or for every shell: save it as _${bin} in a directory of your $fpath.

# User, group or profile names from the local cache (${bin} complete-names; never the network),
# for the --home, --user and --config on the command line.
_${bin}_names() {
  # The whole line ($words starts at the subcommand by now).
  local -a g names w
  local i
  w=(\${(Q)\${(z)BUFFER}})
  for ((i = 1; i < $#w; i++)); do
    case $w[i] in
      --home|--user|-u|--config) g+=($w[i] $w[i+1]) ;;
    esac
  done
  names=(\${(f)"$(${bin} $g complete-names $1 2>/dev/null)"})
  compadd -a names
}

${fns.join("\n\n")}

if [ "$funcstack[1]" = "_${bin}" ]; then
  _${bin} "$@"
else
  compdef _${bin} ${bin}
fi
`;
}

/** `zmqchat completion bash|zsh`: prints the script for that shell. */
export async function completionCommand(cmd: Command, io: Io, shell: string): Promise<void> {
  let root = cmd;
  while (root.parent) root = root.parent;
  if (shell === "bash") io.out(bashCompletion(root).trimEnd());
  else if (shell === "zsh") io.out(zshCompletion(root).trimEnd());
  else throw new ZmqchatError("usage", `no completion for ${shell}: choose bash or zsh`);
}
