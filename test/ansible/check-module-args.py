#!/usr/bin/python3
"""Checks every module call in the given YAML files against the module's documented options.

ansible-lint 6.13 under the production profile does not validate module arguments, and
--syntax-check does not either: a typo such as `instance_typ:` passes both and is only
caught when the task runs. Some tasks never run in the test stage (InfluxDB Enterprise,
NodeSource, apt on EC2), so this reads `ansible-doc --json` and flags unknown arguments.

Usage: check-module-args.py FILE...   (exit 1 and one line per problem when any)
"""

import json
import subprocess
import sys

import yaml

COLLECTION_PREFIXES = ("ansible.builtin.", "ansible.posix.", "amazon.aws.", "community.general.")
# Take free-form keys by design.
FREE_FORM = {"ansible.builtin.set_fact", "ansible.builtin.include_vars"}


def module_calls(node, path, where="task"):
    """Yields (module, args, where) for every task in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.startswith(COLLECTION_PREFIXES):
                yield key, value, f"{path}: {node.get('name', where)}"
            else:
                yield from module_calls(value, path, where)
    elif isinstance(node, list):
        for item in node:
            yield from module_calls(item, path, where)


def main(files):
    calls = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                calls.extend(module_calls(doc, path))
    modules = sorted({m for m, _, _ in calls} - FREE_FORM)
    out = subprocess.run(
        ["ansible-doc", "--json", "-t", "module", *modules], check=True, capture_output=True, text=True
    ).stdout
    docs = json.loads(out)
    problems = []
    for module in modules:
        if module not in docs:
            problems.append(f"{module}: no documentation (unknown module?)")
    for module, args, where in calls:
        if module in FREE_FORM or module not in docs or not isinstance(args, dict):
            continue
        options = docs[module]["doc"].get("options") or {}
        known = set(options)
        for spec in options.values():
            known.update(spec.get("aliases") or [])
        for arg in args:
            if arg not in known:
                problems.append(f"{where}: {module} has no argument {arg!r}")
    for p in problems:
        print(p)
    print(f"{len(calls)} module calls in {len(files)} files, {len(modules)} modules, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
