#!/usr/bin/env bash
# Print the Markdown table of `meshmetric-operator serve` flags, rendered from the binary's own
# `serve --help` (the flag table in src/cli/serve.c is the single source): one row per option with
# its environment variable, default and help text. README.md carries this output between
# <!-- serve-flags:begin --> and <!-- serve-flags:end -->; hack/docs-check.sh fails when they differ.
#
#   hack/flags-table.sh [BUILD_DIR | BINARY]        (default: build)
#   hack/flags-table.sh --update [BUILD_DIR | BINARY]   rewrite the table in README.md in place
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

update=0
if [ "${1:-}" = "--update" ]; then
  update=1
  shift
fi
target=${1:-$ROOT/build}
if [ -d "$target" ]; then
  bin=$target/meshmetric-operator
else
  bin=$target
fi
[ -x "$bin" ] || { echo "flags-table: no executable $bin (build first, or pass BUILD_DIR)" >&2; exit 2; }

help=$("$bin" serve --help)

table=$(printf '%s\n' "$help" | python3 -c '
import re, sys

# A line of config_print_help (src/util/config.c):
#   "  " + name padded to 28 + " " + help [+ " (default X)"] [+ " [$ENV]"]
# where name is "    --flag" or "-c, --flag". Long flag names push the help right.
opt = re.compile(r"^  (?:-\w, |    )--([a-z0-9][a-z0-9-]*)\s+(.*)$")
rows = []
in_options = False
for line in sys.stdin.read().splitlines():
    if line.startswith("Options:"):
        in_options = True
        continue
    if not in_options:
        continue
    m = opt.match(line)
    if not m:
        if line.strip():
            sys.exit("flags-table: cannot parse help line: %r" % line)
        continue
    flag, rest = m.group(1), m.group(2)
    if flag == "help":
        continue
    env = ""
    m_env = re.search(r" \[\$([A-Z0-9_]+)\]$", rest)
    if m_env:
        env, rest = m_env.group(1), rest[: m_env.start()]
    default = ""
    m_def = re.search(r" \(default ([^()]*)\)$", rest)
    if m_def:
        default, rest = m_def.group(1), rest[: m_def.start()]
    rows.append((flag, env, default, rest))
if not rows:
    sys.exit("flags-table: no options found in serve --help")

def cell(text):
    # Markdown table cell: | ends a cell, * starts emphasis, <name> would be taken for HTML.
    for a, b in (("|", "\\|"), ("*", "\\*"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(a, b)
    return text

print("| flag | environment | default | meaning |")
print("|---|---|---|---|")
for flag, env, default, text in rows:
    print("| `--%s` | %s | %s | %s |" % (
        flag,
        "`%s`" % env if env else "",
        "`%s`" % default if default else "",
        cell(text),
    ))
')

if [ $update -eq 0 ]; then
  printf '%s\n' "$table"
  exit 0
fi

readme=$ROOT/README.md
python3 - "$readme" "$table" <<'EOF'
import sys
path, table = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
begin, end = "<!-- serve-flags:begin -->", "<!-- serve-flags:end -->"
i, j = text.find(begin), text.find(end)
if i < 0 or j < i:
    sys.exit("flags-table: %s has no %s ... %s block" % (path, begin, end))
new = text[: i + len(begin)] + "\n" + table + "\n" + text[j:]
if new != text:
    open(path, "w", encoding="utf-8").write(new)
    print("flags-table: README.md updated")
else:
    print("flags-table: README.md already current")
EOF
