// Command helm-render renders a Helm chart without helm, with the engine Helm
// 3 uses: Go's text/template, the sprig functions and sigs.k8s.io/yaml, plus
// Helm's own functions and objects. It exists because Debian has no helm
// package; the chart tests use a real helm instead when one is on PATH.
//
//	helm-render template [NAME] CHART [flags]   like "helm template"
//	helm-render lint CHART [flags]              strict render + object checks
//	helm-render values-table CHART [--readme FILE [--check]]
//	helm-render yaml2json FILE...               documents as JSON (sigs.k8s.io/yaml)
//	helm-render values CHART [-f FILE]... [--set K=V]...   the coalesced values as JSON
//
// template flags (as helm's): -n/--namespace, -f/--values (repeatable),
// --set, --set-string (repeatable), --include-crds, --is-upgrade,
// --kube-version (default 1.32.0), -a/--api-versions (repeatable),
// -s/--show-only (repeatable); and --strict (missingkey=error, as helm lint
// --strict), --notes (also print the rendered NOTES.txt).
//
// Build offline in GOPATH mode with Debian's packages (golang-go,
// golang-github-masterminds-sprig-dev, golang-k8s-sigs-yaml-dev,
// golang-github-xeipuuv-gojsonschema-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o helm-render ./hack/helm-render
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

func warnf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func goVersion() string { return runtime.Version() }

func readAllStdin() ([]byte, error) { return io.ReadAll(os.Stdin) }

type cliOptions struct {
	positional  []string
	namespace   string
	valueFiles  []string
	sets        []string // "s:" or "S:" prefixed (--set / --set-string), in order
	includeCRDs bool
	isUpgrade   bool
	kubeVersion string
	apiVersions []string
	showOnly    []string
	strict      bool
	notes       bool
	readme      string
	check       bool
	output      string
}

func parseArgs(args []string) (*cliOptions, error) {
	o := &cliOptions{namespace: "default", kubeVersion: "1.32.0"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.positional = append(o.positional, a)
			continue
		}
		name, val, hasVal := a, "", false
		if eq := strings.IndexByte(a, '='); eq > 0 {
			name, val, hasVal = a[:eq], a[eq+1:], true
		}
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag needs an argument: %s", name)
			}
			i++
			return args[i], nil
		}
		var err error
		var v string
		switch name {
		case "-n", "--namespace":
			o.namespace, err = next()
		case "-f", "--values":
			v, err = next()
			o.valueFiles = append(o.valueFiles, splitComma(v)...)
		case "--set":
			v, err = next()
			o.sets = append(o.sets, "s:"+v)
		case "--set-string":
			v, err = next()
			o.sets = append(o.sets, "S:"+v)
		case "--include-crds":
			o.includeCRDs = true
		case "--is-upgrade":
			o.isUpgrade = true
		case "--kube-version":
			o.kubeVersion, err = next()
		case "-a", "--api-versions":
			v, err = next()
			o.apiVersions = append(o.apiVersions, splitComma(v)...)
		case "-s", "--show-only":
			v, err = next()
			o.showOnly = append(o.showOnly, v)
		case "--strict":
			o.strict = true
		case "--notes":
			o.notes = true
		case "--readme":
			o.readme, err = next()
		case "--check":
			o.check = true
		case "-o", "--output":
			o.output, err = next()
		default:
			return nil, fmt.Errorf("unknown flag: %s", name)
		}
		if err != nil {
			return nil, err
		}
	}
	return o, nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// userValues merges -f files and --set flags as helm's values.Options does.
func userValues(o *cliOptions) (map[string]interface{}, error) {
	base := map[string]interface{}{}
	for _, f := range o.valueFiles {
		m, err := readValuesFile(f)
		if err != nil {
			return nil, err
		}
		base = mergeMaps(base, m)
	}
	for _, s := range o.sets {
		if err := parseSet(s[2:], base, s[0] == 'S'); err != nil {
			return nil, fmt.Errorf("failed parsing --set data: %w", err)
		}
	}
	return base, nil
}

type result struct {
	out   string
	notes string
	docs  []string
}

func runTemplate(o *cliOptions, releaseName, chartDir string) (*result, error) {
	c, err := loadChart(chartDir)
	if err != nil {
		return nil, err
	}
	caps, err := newCapabilities(o.kubeVersion, o.apiVersions)
	if err != nil {
		return nil, err
	}
	if err := kubeVersionCheck(c, caps); err != nil {
		return nil, err
	}
	uv, err := userValues(o)
	if err != nil {
		return nil, err
	}
	vals := coalesce(c.Values, uv)
	if err := validateSchema(c, vals); err != nil {
		return nil, err
	}
	rendered, err := render(c, vals, renderOptions{
		ReleaseName: releaseName, Namespace: o.namespace, IsUpgrade: o.isUpgrade,
		Strict: o.strict, Caps: caps,
	})
	if err != nil {
		return nil, err
	}
	r := &result{}
	for name, text := range rendered {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.notes = text
			delete(rendered, name)
		}
	}
	r.out, err = assemble(c, rendered, o.includeCRDs, o.showOnly)
	if err != nil {
		return nil, err
	}
	r.docs = splitManifests(r.out)
	return r, nil
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd := os.Args[1]
	o, err := parseArgs(os.Args[2:])
	if err != nil {
		fatal(err)
	}
	switch cmd {
	case "template":
		name, dir := "release-name", ""
		switch len(o.positional) {
		case 1:
			dir = o.positional[0]
		case 2:
			name, dir = o.positional[0], o.positional[1]
		default:
			usage()
		}
		r, err := runTemplate(o, name, dir)
		if err != nil {
			fatal(err)
		}
		if o.output == "json" {
			js, err := docsJSON(r.docs)
			if err != nil {
				fatal(err)
			}
			fmt.Println(js)
			return
		} else if o.output != "" && o.output != "yaml" {
			fatal(fmt.Errorf("--output must be yaml or json"))
		}
		fmt.Print(r.out)
		if o.notes {
			fmt.Printf("\nNOTES:\n%s\n", r.notes)
		}
	case "lint":
		if len(o.positional) != 1 {
			usage()
		}
		o.strict = true
		r, err := runTemplate(o, "release-name", o.positional[0])
		if err == nil {
			err = lintDocs(r.docs)
		}
		if err != nil {
			fmt.Printf("==> Linting %s\n[ERROR] %v\n\nError: 1 chart(s) linted, 1 chart(s) failed\n", o.positional[0], err)
			os.Exit(1)
		}
		fmt.Printf("==> Linting %s\n\n1 chart(s) linted, 0 chart(s) failed\n", o.positional[0])
	case "yaml2json":
		var docs []string
		for _, f := range o.positional {
			data, err := os.ReadFile(f)
			if err != nil {
				fatal(err)
			}
			for _, d := range splitManifests(string(data)) {
				docs = append(docs, "# Source: "+f+"\n"+d)
			}
		}
		js, err := docsJSON(docs)
		if err != nil {
			fatal(err)
		}
		fmt.Println(js)
	case "values":
		// The values templates see (chart defaults coalesced with -f/--set), as JSON, after the
		// schema check: what `helm get values --all` shows for an installed release.
		if len(o.positional) != 1 {
			usage()
		}
		c, err := loadChart(o.positional[0])
		if err != nil {
			fatal(err)
		}
		uv, err := userValues(o)
		if err != nil {
			fatal(err)
		}
		vals := coalesce(c.Values, uv)
		if err := validateSchema(c, vals); err != nil {
			fatal(err)
		}
		b, _ := json.MarshalIndent(vals, "", "  ")
		fmt.Println(string(b))
	case "values-table":
		if len(o.positional) != 1 {
			usage()
		}
		if err := valuesTable(o.positional[0], o.readme, o.check); err != nil {
			fatal(err)
		}
	default:
		usage()
	}
}

// lintDocs checks what helm lint checks of rendered objects: every document
// is a mapping with apiVersion, kind and a DNS-1123 metadata.name, and no
// object is defined twice.
func lintDocs(docs []string) error {
	seen := map[string]bool{}
	var problems []string
	for _, d := range docs {
		var h simpleHead
		if err := yamlUnmarshal(d, &h); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		src := firstLine(d)
		if h.Version == "" || h.Kind == "" {
			problems = append(problems, src+": object has no apiVersion or kind")
			continue
		}
		if h.Metadata == nil || h.Metadata.Name == "" {
			problems = append(problems, src+": object has no metadata.name")
			continue
		}
		if !dns1123Subdomain(h.Metadata.Name) {
			problems = append(problems, fmt.Sprintf("%s: metadata.name %q is not a valid DNS-1123 subdomain", src, h.Metadata.Name))
		}
		key := h.Version + "/" + h.Kind + "/" + h.Metadata.Name
		if seen[key] {
			problems = append(problems, src+": duplicate object "+key)
		}
		seen[key] = true
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func dns1123Subdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for i, c := range label {
			alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
			if !alnum && !(c == '-' && i > 0 && i < len(label)-1) {
				return false
			}
		}
	}
	return true
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  helm-render template [NAME] CHART [-n NS] [-f FILE]... [--set K=V]... [--set-string K=V]...
                       [--include-crds] [--is-upgrade] [--kube-version V] [-a API]... [-s FILE]...
                       [--strict] [--notes]
  helm-render template ... -o json    the documents as JSON: [{"source": FILE, "object": {...}}]
  helm-render yaml2json FILE...      YAML documents as JSON, parsed as kubectl parses them
  helm-render values CHART [-f FILE]... [--set K=V]...   the coalesced values as JSON
  helm-render lint CHART [-f FILE]... [--set K=V]...
  helm-render values-table CHART [--readme FILE [--check]]`)
	os.Exit(2)
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "Error: %v\n", err)
	os.Exit(1)
}

// docsJSON converts documents to a JSON array of {"source", "object"} with
// sigs.k8s.io/yaml, the YAML library kubectl and the API server use (so
// YAML 1.1 quirks such as octal 0440 read the same). Documents that hold only
// comments are skipped.
func docsJSON(docs []string) (string, error) {
	type entry struct {
		Source string          `json:"source"`
		Object json.RawMessage `json:"object"`
	}
	out := []entry{}
	re := newSourceRegexp()
	for _, d := range docs {
		src := ""
		if m := re.FindStringSubmatch(d); m != nil {
			src = m[1]
		} else if strings.HasPrefix(d, "# Source: ") {
			src = strings.TrimPrefix(firstLine(d), "# Source: ")
		}
		js, err := yaml.YAMLToJSON([]byte(d))
		if err != nil {
			return "", fmt.Errorf("%s: %w", src, err)
		}
		if string(js) == "null" {
			continue
		}
		out = append(out, entry{Source: src, Object: js})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	return string(b), err
}
