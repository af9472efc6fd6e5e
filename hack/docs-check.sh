#!/usr/bin/env bash
# Check that the user documentation says what the binary does:
#
#  1. the serve flags table in README.md (between <!-- serve-flags:begin --> and
#     <!-- serve-flags:end -->) is exactly what hack/flags-table.sh renders from `serve --help`;
#  2. every serve flag appears in README.md, and every --flag the docs name exists: in the README's
#     "How the operator runs" section and in docs/operator.md a flag of `serve` (or of kubectl/helm,
#     listed below), elsewhere a flag of one of the commands, of hack/cluster.sh or of those tools;
#  3. every meshmetric_* metric family README.md and docs/operator.md name exists (the webhook's from
#     a scrape of `serve --policies-dir`, the operator's from src/operator/), and every family the
#     binary exports is named in README.md;
#  4. every relative link in the Markdown files resolves (file, and #anchor for .md files);
#  5. every repository path named in `backticks` in README.md, docs/architecture.md,
#     docs/merge-order.md and docs/operator.md exists, and none of them points outside the
#     repository.
#
#   hack/docs-check.sh [BUILD_DIR]        (default: build)
#
# Prints one line per problem and "docs-check: ok" or "docs-check: N problem(s)"; exits non-zero on
# any problem. Needs python3 and curl; starts `serve` on 127.0.0.1 (free ports) for a second.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" 2>/dev/null && pwd) || { echo "docs-check: no build directory ${1:-$ROOT/build}" >&2; exit 2; }
cd "$ROOT"
BIN=$BUILD/meshmetric-operator
[ -x "$BIN" ] || { echo "docs-check: no executable $BIN (build first, or pass BUILD_DIR)" >&2; exit 2; }

TMP=$(mktemp -d /tmp/mm-docs-check.XXXXXX)
SERVE_PID=
cleanup() {
  if [ -n "$SERVE_PID" ]; then
    kill -TERM "$SERVE_PID" 2>/dev/null
    wait "$SERVE_PID" 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

problems=0
problem() { echo "docs-check: $*"; problems=$((problems + 1)); }

# ---- 1. the flags table ----------------------------------------------------------------------
if ! hack/flags-table.sh "$BIN" >"$TMP/table.md"; then
  problem "hack/flags-table.sh failed"
fi
python3 - README.md >"$TMP/readme-table.md" <<'EOF' || problem "README.md has no <!-- serve-flags:begin --> ... <!-- serve-flags:end --> block"
import sys
text = open(sys.argv[1], encoding="utf-8").read()
begin, end = "<!-- serve-flags:begin -->", "<!-- serve-flags:end -->"
i, j = text.find(begin), text.find(end)
if i < 0 or j < i:
    sys.exit(1)
sys.stdout.write(text[i + len(begin):j].strip("\n") + "\n")
EOF
if ! diff -u "$TMP/readme-table.md" "$TMP/table.md" >"$TMP/table.diff"; then
  problem "the serve flags table in README.md is stale (fix: hack/flags-table.sh --update $BUILD):"
  sed 's/^/    /' "$TMP/table.diff"
fi

# ---- the commands' flags -------------------------------------------------------------------------
flags_of() { "$BIN" "$@" --help 2>/dev/null | grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u; }
flags_of serve >"$TMP/flags.serve"
for c in inject explain validate certs; do flags_of "$c"; done | sort -u >"$TMP/flags.cli"
grep -E '^#' hack/cluster.sh | grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u >"$TMP/flags.cluster"
[ -s "$TMP/flags.serve" ] || problem "serve --help lists no flags"

# ---- 3. metric families --------------------------------------------------------------------------
"$BIN" certs --service docs-check --namespace docs-check --out "$TMP/certs" >/dev/null 2>&1 ||
  problem "meshmetric-operator certs failed"
mkdir -p "$TMP/policies"
"$BIN" serve --policies-dir "$TMP/policies" --tls-cert-file "$TMP/certs/tls.crt" \
  --tls-key-file "$TMP/certs/tls.key" --webhook-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 \
  --log-format logfmt >"$TMP/serve.log" 2>&1 &
SERVE_PID=$!
port=
for _ in $(seq 100); do
  port=$(sed -nE 's/.*msg=listening server=metrics .* port=([0-9]+).*/\1/p' "$TMP/serve.log" | head -1)
  [ -n "$port" ] && break
  sleep 0.05
done
if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/metrics" >"$TMP/metrics.txt"; then
  sed -nE 's/^# TYPE (meshmetric_[a-z0-9_]+) .*/\1/p' "$TMP/metrics.txt" | sort -u >"$TMP/families.webhook"
else
  problem "could not scrape /metrics of serve --policies-dir (log: $(tail -1 "$TMP/serve.log"))"
  : >"$TMP/families.webhook"
fi
kill -TERM "$SERVE_PID" 2>/dev/null
wait "$SERVE_PID" 2>/dev/null
SERVE_PID=
grep -ohE 'meshmetric_operator_[a-z0-9_]+' src/operator/*.c | sed -E 's/_(bucket|sum|count)$//' |
  sort -u >"$TMP/families.operator"

# ---- 2, 3, 4, 5: the Markdown files ------------------------------------------------------------
python3 - "$TMP" >"$TMP/md.out" <<'EOF' || problem "the Markdown checks failed to run (python3 error above)"
import glob, os, re, sys

tmp = sys.argv[1]
def lines(name):
    with open(os.path.join(tmp, name)) as f:
        return {l.strip() for l in f if l.strip()}

serve = lines("flags.serve")
cli = lines("flags.cli")
cluster = lines("flags.cluster")
# Flags of other tools the docs show in commands (helm, kubectl, cmake, curl, openssl).
external = {
    "--namespace", "--create-namespace", "--set", "--reuse-values", "--api-versions",  # helm
    "--field-selector", "--type", "--selector", "--all-namespaces", "--sort-by",       # kubectl
    "--for", "--timeout", "--dry-run", "--validate", "--kubeconfig", "--context",
    "--cacert",                                                                          # curl
    "--build", "--local",                                                   # cmake, kubectl patch
}
webhook_families = lines("families.webhook")
operator_families = lines("families.operator")
exported = webhook_families | operator_families

problems = []
def problem(msg):
    problems.append(msg)

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()

def strip_code_blocks(text):
    """The text outside ``` blocks (inline code kept)."""
    out, inside = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
            out.append("")
            continue
        out.append("" if inside else line)
    return "\n".join(out)

def slug(heading):
    h = re.sub(r"[`*_]", "", heading.strip()).lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")

def anchors(path):
    out, seen = set(), {}
    for line in strip_code_blocks(read(path)).splitlines():
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            s = slug(m.group(2))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else "%s-%d" % (s, n))
    for m in re.finditer(r'<a (?:name|id)="([^"]+)"', read(path)):
        out.add(m.group(1))
    return out

def section(text, heading):
    """The part of text under '## heading' up to the next '## '."""
    m = re.search(r"^## " + re.escape(heading) + r"\s*$", text, re.M)
    if not m:
        return ""
    rest = text[m.end():]
    n = re.search(r"^## ", rest, re.M)
    return rest[: n.start()] if n else rest

FLAG = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")

# ---- 2. flags ----
readme = read("README.md")
for f in sorted(serve):
    if f == "--help":
        continue
    if not re.search(r"`" + re.escape(f) + r"[`= ]", readme):
        problem("README.md does not name the serve flag %s" % f)
serve_docs = [("README.md (How the operator runs)", section(readme, "How the operator runs"))]
if os.path.exists("docs/operator.md"):
    serve_docs.append(("docs/operator.md", read("docs/operator.md")))
for name, text in serve_docs:
    for f in sorted(set(FLAG.findall(text))):
        if f not in serve and f not in external:
            problem("%s names %s, which serve --help does not list" % (name, f))
for path in ["README.md", "docs/architecture.md", "docs/merge-order.md"]:
    if not os.path.exists(path):
        continue
    for f in sorted(set(FLAG.findall(read(path)))):
        if f not in serve | cli | cluster | external:
            problem("%s names %s, which no command's --help (nor hack/cluster.sh) lists" % (path, f))

# ---- 3. metric families ----
FAMILY = re.compile(r"\bmeshmetric_[a-z0-9_]*[a-z0-9]")
def base(family):
    return re.sub(r"_(bucket|sum|count)$", "", family)
for path in ["README.md", "docs/operator.md"]:
    if not os.path.exists(path):
        continue
    for fam in sorted({base(f) for f in FAMILY.findall(read(path))}):
        if fam.startswith("meshmetric_operator_"):
            known = fam in operator_families
        else:
            known = fam in webhook_families
        if not known:
            problem("%s names the metric %s, which the binary does not export" % (path, fam))
named = {base(f) for f in FAMILY.findall(readme)}
for fam in sorted(exported - named):
    problem("README.md does not name the exported metric family %s" % fam)

# ---- 4. links ----
md_files = ["README.md"] + sorted(glob.glob("docs/*.md")) + [
    p for p in ["charts/meshmetric-operator/README.md", "tests/apiserver/README.md"]
    if os.path.exists(p)]
LINK = re.compile(r"\]\(([^)\s]+)\)")
for path in md_files:
    text = strip_code_blocks(read(path))
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # http:, https:, mailto:
        file_part, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(dest):
            problem("%s links to %s, which does not exist" % (path, target))
            continue
        if os.path.relpath(os.path.abspath(dest)).startswith(".."):
            problem("%s links outside the repository: %s" % (path, target))
        if anchor and dest.endswith(".md") and anchor not in anchors(dest):
            problem("%s links to %s: no heading gives #%s" % (path, target, anchor))

# ---- 5. repository paths named in the docs this check owns ----
own = [p for p in ["README.md", "docs/architecture.md", "docs/merge-order.md", "docs/operator.md"]
       if os.path.exists(p)]
PATH = re.compile(r"`((?:src|tests|hack|docs|charts|crds|manifests|examples|bench)/[^`\s]*)`")
for path in own:
    text = read(path)
    if re.search(r"\.\./share[d]|/work/share[d]", text):
        problem("%s refers to a folder outside the repository" % path)
    for ref in sorted(set(PATH.findall(text))):
        ref = re.sub(r"[:#].*$", "", ref).rstrip(".,;)")
        if any(c in ref for c in "*<>{}$"):
            continue  # a pattern or placeholder, not a path
        if not os.path.exists(ref):
            problem("%s names %s, which does not exist" % (path, ref))

for p in problems:
    print(p)
EOF
while IFS= read -r line; do
  [ -n "$line" ] && problem "$line"
done <"$TMP/md.out"

if [ $problems -eq 0 ]; then
  echo "docs-check: ok"
  exit 0
fi
echo "docs-check: $problems problem(s)"
exit 1
