package main

// Tests of the Helm behaviours the chart relies on, each case from Helm 3's documented or coded
// behaviour (pkg/engine, pkg/releaseutil, pkg/chartutil, pkg/strvals, cmd/helm/template.go).
// Run: GO111MODULE=off GOPATH=/usr/share/gocode go test ./hack/helm-render

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeChart(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const chartYAML = "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"4.5.6\"\nkubeVersion: \">=1.25.0-0\"\n"

func renderDir(t *testing.T, dir string, o *cliOptions) (*result, error) {
	t.Helper()
	if o.namespace == "" {
		o.namespace = "ns1"
	}
	if o.kubeVersion == "" {
		o.kubeVersion = "1.32.0"
	}
	return runTemplate(o, "rel", dir)
}

func TestTemplateOutputLikeHelm(t *testing.T) {
	dir := writeChart(t, map[string]string{
		"Chart.yaml":             chartYAML,
		"values.yaml":            "num: 3\nname: x\nnested: {a: 1, b: 2}\n",
		"templates/_helpers.tpl": `{{- define "demo.name" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end }}`,
		// Two documents in one file, a Deployment before a ServiceAccount: the output sorts by kind.
		"templates/b.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ include \"demo.name\" . }}\n" +
			"  annotations:\n    missing: \"{{ .Values.nothere }}\"\n---\n\n\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n",
		"templates/a.yaml":    "{{- if false }}\nkind: Nothing\n{{- end }}\n   \n",
		"templates/c.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  chart: {{ .Chart.Version }}/{{ .Chart.AppVersion }}\n  kube: {{ .Capabilities.KubeVersion.Minor }}\n  svc: {{ .Release.Service }}\n  inst: \"{{ .Release.IsInstall }}\"\n  n: \"{{ .Values.num }}\"\n  tpl: {{ tpl \"{{ .Values.name }}-t\" . }}\n  lookup: \"{{ len (lookup \"v1\" \"Secret\" \"ns\" \"s\") }}\"\n  file: {{ .Files.Get \"files/x.txt\" | trim }}\n  tmpl: {{ .Template.Name }}\n",
		"templates/NOTES.txt": "hello {{ .Release.Name }}",
		"crds/z.yaml":         "# a CRD\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: zs.example.com\n",
		"files/x.txt":         "from a file\n",
	})
	r, err := renderDir(t, dir, &cliOptions{includeCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "---\n# Source: demo/crds/z.yaml\n# a CRD\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: zs.example.com\n\n" +
		"---\n# Source: demo/templates/b.yaml\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n" +
		"---\n# Source: demo/templates/c.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  chart: 1.2.3/4.5.6\n  kube: 32\n  svc: Helm\n  inst: \"true\"\n  n: \"3\"\n  tpl: x-t\n  lookup: \"0\"\n  file: from a file\n  tmpl: demo/templates/c.yaml\n" +
		"---\n# Source: demo/templates/b.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: demo-rel\n  annotations:\n    missing: \"\"\n"
	if r.out != want {
		t.Errorf("output:\n%s\nwant:\n%s", r.out, want)
	}
	if r.notes != "hello rel" {
		t.Errorf("notes %q", r.notes)
	}
	// Without --include-crds the CRDs are left out, as helm template does.
	r, err = renderDir(t, dir, &cliOptions{})
	if err != nil || strings.Contains(r.out, "crds/") {
		t.Errorf("CRDs without --include-crds: %v\n%s", err, r.out)
	}
	// --show-only keeps the named template's documents.
	r, err = renderDir(t, dir, &cliOptions{showOnly: []string{"templates/b.yaml"}})
	if err != nil || strings.Count(r.out, "# Source:") != 2 || strings.Contains(r.out, "ConfigMap") {
		t.Errorf("show-only: %v\n%s", err, r.out)
	}
	if _, err = renderDir(t, dir, &cliOptions{showOnly: []string{"templates/nope.yaml"}}); err == nil ||
		!strings.Contains(err.Error(), "could not find template templates/nope.yaml in chart") {
		t.Errorf("show-only of a missing template: %v", err)
	}
	// --strict (missingkey=error) catches the reference to a value that does not exist.
	if _, err = renderDir(t, dir, &cliOptions{strict: true}); err == nil || !strings.Contains(err.Error(), "nothere") {
		t.Errorf("strict: %v", err)
	}
	// kubeVersion in Chart.yaml is enforced.
	if _, err = renderDir(t, dir, &cliOptions{kubeVersion: "1.20.0"}); err == nil || !strings.Contains(err.Error(), "incompatible with Kubernetes v1.20.0") {
		t.Errorf("kubeVersion: %v", err)
	}
}

// SplitManifests' separator regexp consumes the newline before a second "---" on the next
// line, so that "---" stays at the top of the following document, exactly as in Helm.
func TestSplitManifestsQuirk(t *testing.T) {
	got := splitManifests("a: 1\n---\n\n---\nb: 2\n---\n   \n")
	want := []string{"a: 1", "---\nb: 2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
	// YAML 1.1 as in Helm (sigs.k8s.io/yaml on yaml.v2): the key n is the boolean false.
	var m map[string]interface{}
	if err := yamlUnmarshal("n: 1\non: 2\n", &m); err != nil || m["false"] != 1.0 || m["true"] != 2.0 {
		t.Errorf("YAML 1.1 keys: %v %v", m, err)
	}
}

func TestRequiredFailAndSchema(t *testing.T) {
	dir := writeChart(t, map[string]string{
		"Chart.yaml":         chartYAML,
		"values.yaml":        "a: \"\"\nb: 1\n",
		"values.schema.json": `{"type":"object","properties":{"b":{"type":"integer","maximum":5}},"additionalProperties":true}`,
		"templates/x.yaml":   "v: {{ required \"a is required\" .Values.a }}\n",
	})
	if _, err := renderDir(t, dir, &cliOptions{}); err == nil || !strings.Contains(err.Error(), "a is required") {
		t.Errorf("required: %v", err)
	}
	_, err := renderDir(t, dir, &cliOptions{sets: []string{"s:a=x,b=9"}})
	if err == nil || !strings.Contains(err.Error(), "values don't meet the specifications of the schema(s) in the following chart(s):\ndemo:\n- b: Must be less than or equal to 5") {
		t.Errorf("schema: %v", err)
	}
	if _, err := renderDir(t, dir, &cliOptions{sets: []string{"s:a=x,b=2"}}); err != nil {
		t.Errorf("valid values: %v", err)
	}
}

func TestSetParsing(t *testing.T) {
	cases := []struct {
		in       string
		asString bool
		want     map[string]interface{}
	}{
		{"a=b,c.d=e", false, map[string]interface{}{"a": "b", "c": map[string]interface{}{"d": "e"}}},
		{"n=10,t=true,f=false,z=0,o=007,x=null", false, map[string]interface{}{"n": int64(10), "t": true, "f": false, "z": int64(0), "o": "007", "x": nil}},
		{"n=10,t=true", true, map[string]interface{}{"n": "10", "t": "true"}},
		{"l={a,b,3}", false, map[string]interface{}{"l": []interface{}{"a", "b", int64(3)}}},
		{`a\.b=c,d=e\,f`, false, map[string]interface{}{"a.b": "c", "d": "e,f"}},
		{"l[1].x=y", false, map[string]interface{}{"l": []interface{}{nil, map[string]interface{}{"x": "y"}}}},
		{"k=a=b", false, map[string]interface{}{"k": "a=b"}},
	}
	for _, c := range cases {
		got := map[string]interface{}{}
		if err := parseSet(c.in, got, c.asString); err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %#v want %#v", c.in, got, c.want)
		}
	}
	if err := parseSet("novalue", map[string]interface{}{}, false); err == nil {
		t.Error("a key without value must fail")
	}
}

func TestCoalesce(t *testing.T) {
	defaults := map[string]interface{}{
		"a": map[string]interface{}{"b": 1.0, "c": 2.0},
		"d": "x",
		"e": map[string]interface{}{"f": 1.0},
		"l": []interface{}{"x"},
	}
	user := mergeMaps(
		map[string]interface{}{"a": map[string]interface{}{"b": 5.0}, "d": nil},
		map[string]interface{}{"e": map[string]interface{}{"g": 2.0}, "l": []interface{}{"y", "z"}})
	got := coalesce(defaults, user)
	want := map[string]interface{}{
		"a": map[string]interface{}{"b": 5.0, "c": 2.0}, // maps merge key by key
		"e": map[string]interface{}{"f": 1.0, "g": 2.0},
		"l": []interface{}{"y", "z"}, // lists are replaced whole
		// "d" removed: a user null deletes the default
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	if defaults["a"].(map[string]interface{})["b"] != 1.0 {
		t.Error("coalesce changed the chart's defaults")
	}
}

func TestInstallOrder(t *testing.T) {
	files := map[string]string{
		"demo/templates/z.yaml": "kind: MutatingWebhookConfiguration\n---\nkind: Zebra\n---\nkind: Apple\n",
		"demo/templates/a.yaml": "kind: Deployment\n---\nkind: Namespace\n---\nkind: ServiceAccount\n",
		"demo/templates/_p.tpl": "kind: Secret\n",
	}
	_, ms, err := sortManifests(files)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, m := range ms {
		kinds = append(kinds, m.Kind)
	}
	want := []string{"Namespace", "ServiceAccount", "Deployment", "MutatingWebhookConfiguration", "Apple", "Zebra"}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("order %v want %v", kinds, want)
	}
	if _, _, err := sortManifests(map[string]string{"demo/templates/bad.yaml": "a: [b\n"}); err == nil ||
		!strings.Contains(err.Error(), "YAML parse error on demo/templates/bad.yaml") {
		t.Errorf("bad YAML: %v", err)
	}
}

func TestValuesDocs(t *testing.T) {
	raw := "# -- top level\na: 1\nb:\n  # -- (string) nested\n  # continued\n  # @default -- computed\n  c: null\n  d:\n  - x: 1\n    y: 2\n  # -- after a list\n  e: true\n"
	docs, err := parseValuesDocs([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, strings.Join(d.path, ".")+"|"+d.typ+"|"+d.def+"|"+d.description)
	}
	want := []string{"a|||top level", "b.c|string|computed|nested continued", "b.e|||after a list"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("docs %q want %q", got, want)
	}
}

func TestDNS1123(t *testing.T) {
	for s, want := range map[string]bool{"a": true, "a-b.c": true, "A": false, "-a": false, "a-": false, "": false, "a..b": false} {
		if dns1123Subdomain(s) != want {
			t.Errorf("%q: want %v", s, want)
		}
	}
}
