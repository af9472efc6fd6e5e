package main

// The template engine of Helm 3 (helm.sh/helm/v3/pkg/engine): Go's
// text/template with sprig's function map (minus env and expandenv), Helm's
// own functions (include, tpl, required, toYaml, fromYaml, toJson, lookup,
// ...), one template set holding every template of the chart, partials
// (files starting with "_") parsed but not rendered, missingkey=zero
// (missingkey=error with --strict, as helm lint --strict) and "<no value>"
// replaced by "" in the output.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

const recursionMaxNums = 1000

// ---- objects the templates see ----

// KubeVersion mirrors chartutil.KubeVersion.
type KubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

func (kv *KubeVersion) String() string { return kv.Version }

// VersionSet mirrors chartutil.VersionSet (.Capabilities.APIVersions).
type VersionSet []string

// Has reports whether apiVersion ("group/version" or "group/version/Kind") is served.
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// HelmVersion mirrors helm's version.BuildInfo.
type HelmVersion struct {
	Version      string `json:"version,omitempty"`
	GitCommit    string `json:"git_commit,omitempty"`
	GitTreeState string `json:"git_tree_state,omitempty"`
	GoVersion    string `json:"go_version,omitempty"`
}

// Capabilities mirrors chartutil.Capabilities.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion HelmVersion
}

// defaultAPIVersions are the built-in group/versions of Kubernetes 1.32, as
// Helm's DefaultVersionSet lists them for client-only rendering.
var defaultAPIVersions = []string{
	"v1",
	"admissionregistration.k8s.io/v1", "admissionregistration.k8s.io/v1beta1",
	"apiextensions.k8s.io/v1", "apiregistration.k8s.io/v1",
	"apps/v1", "authentication.k8s.io/v1", "authorization.k8s.io/v1",
	"autoscaling/v1", "autoscaling/v2", "batch/v1", "certificates.k8s.io/v1",
	"coordination.k8s.io/v1", "discovery.k8s.io/v1", "events.k8s.io/v1",
	"flowcontrol.apiserver.k8s.io/v1", "networking.k8s.io/v1", "node.k8s.io/v1",
	"policy/v1", "rbac.authorization.k8s.io/v1", "scheduling.k8s.io/v1",
	"storage.k8s.io/v1",
}

func newCapabilities(kubeVersion string, extra []string) (*Capabilities, error) {
	v, err := parseSemver(kubeVersion)
	if err != nil {
		return nil, fmt.Errorf("invalid kube version %q: %w", kubeVersion, err)
	}
	gv := "v" + v.String()
	apis := append(VersionSet{}, defaultAPIVersions...)
	apis = append(apis, extra...)
	return &Capabilities{
		KubeVersion: KubeVersion{Version: gv, Major: fmt.Sprint(v.Major()), Minor: fmt.Sprint(v.Minor()), GitVersion: gv},
		APIVersions: apis,
		HelmVersion: HelmVersion{Version: "v3.17.0+helm-render", GitTreeState: "clean", GoVersion: goVersion()},
	}, nil
}

// Files mirrors chart's engine.files (.Files).
type Files map[string][]byte

// Get returns a file's content as a string ("" when absent).
func (f Files) Get(name string) string { return string(f.GetBytes(name)) }

// GetBytes returns a file's content.
func (f Files) GetBytes(name string) []byte {
	if v, ok := f[name]; ok {
		return v
	}
	return []byte{}
}

// Glob returns the files whose names match the pattern (path.Match, plus "**").
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if globMatch(pattern, name) {
			out[name] = data
		}
	}
	return out
}

// Lines splits a file into lines.
func (f Files) Lines(name string) []string {
	s := f.Get(name)
	if s == "" {
		return []string{}
	}
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

// AsConfig renders the files as the data of a ConfigMap (base names as keys).
func (f Files) AsConfig() string {
	if len(f) == 0 {
		return ""
	}
	m := map[string]string{}
	for k, v := range f {
		m[path.Base(k)] = string(v)
	}
	return toYAML(m)
}

// AsSecrets renders the files as the data of a Secret (base64 values).
func (f Files) AsSecrets() string {
	if len(f) == 0 {
		return ""
	}
	m := map[string][]byte{}
	for k, v := range f {
		m[path.Base(k)] = v
	}
	return toYAML(m)
}

func globMatch(pattern, name string) bool {
	if strings.Contains(pattern, "**") {
		prefix := strings.SplitN(pattern, "**", 2)[0]
		suffix := strings.SplitN(pattern, "**", 2)[1]
		if !strings.HasPrefix(name, prefix) {
			return false
		}
		if suffix == "" {
			return true
		}
		m, _ := path.Match(strings.TrimPrefix(suffix, "/"), path.Base(name))
		return m
	}
	m, _ := path.Match(pattern, name)
	return m
}

// ---- functions ----

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func toYAMLPretty(v interface{}) string { return toYAML(v) }

func fromYAML(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(str string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(str string) map[string]interface{} {
	m := make(map[string]interface{})
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(str string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func baseFuncMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toToml": func(interface{}) (string, error) {
			return "", errors.New("toToml is not supported by helm-render")
		},
		"toYaml":        toYAML,
		"toYamlPretty":  toYAMLPretty,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,
		// Replaced per render below; present here so templates parse.
		"include":  func(string, interface{}) string { return "not implemented" },
		"tpl":      func(string, interface{}) interface{} { return "not implemented" },
		"required": func(string, interface{}) (interface{}, error) { return "not implemented", nil },
		// Client-only rendering (helm template, Argo CD) has no cluster:
		// lookup returns an empty map, as Helm does there.
		"lookup": func(string, string, string, string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func includeFun(t *template.Template, includedNames map[string]int) func(string, interface{}) (string, error) {
	return func(name string, data interface{}) (string, error) {
		var buf strings.Builder
		if v, ok := includedNames[name]; ok {
			if v > recursionMaxNums {
				return "", fmt.Errorf("unable to execute template: rendering template has a nested reference name: %s", name)
			}
			includedNames[name]++
		} else {
			includedNames[name] = 1
		}
		err := t.ExecuteTemplate(&buf, name, data)
		includedNames[name]--
		return buf.String(), err
	}
}

func tplFun(parent *template.Template, includedNames map[string]int, strict bool) func(string, interface{}) (string, error) {
	return func(tpl string, vals interface{}) (string, error) {
		t, err := parent.Clone()
		if err != nil {
			return "", fmt.Errorf("cannot clone template: %w", err)
		}
		if strict {
			t.Option("missingkey=error")
		} else {
			t.Option("missingkey=zero")
		}
		t.Funcs(template.FuncMap{
			"include": includeFun(t, includedNames),
			"tpl":     tplFun(t, includedNames, strict),
		})
		t, err = t.New(parent.Name()).Parse(tpl)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %w", tpl, err)
		}
		var buf strings.Builder
		if err := t.Execute(&buf, vals); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", tpl, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
}

func requiredFun(warn string, val interface{}) (interface{}, error) {
	if val == nil {
		return val, errors.New(warn)
	}
	if s, ok := val.(string); ok && s == "" {
		return val, errors.New(warn)
	}
	return val, nil
}

// ---- rendering ----

type renderOptions struct {
	ReleaseName string
	Namespace   string
	IsUpgrade   bool
	Strict      bool
	Caps        *Capabilities
}

// sortTemplates orders templates as Helm's engine does: deepest path first,
// then by name, so that definitions in a chart's own files win.
func sortTemplates(names []string) []string {
	out := append([]string{}, names...)
	sort.Slice(out, func(i, j int) bool {
		a, b := strings.Count(out[i], "/"), strings.Count(out[j], "/")
		if a != b {
			return a > b
		}
		return out[i] < out[j]
	})
	return out
}

// render executes every template and returns file name -> output.
func render(c *chart, vals map[string]interface{}, o renderOptions) (map[string]string, error) {
	files := Files{}
	for _, f := range c.Files {
		files[f.Name] = f.Data
	}
	top := map[string]interface{}{
		"Values": vals,
		"Release": map[string]interface{}{
			"Name":      o.ReleaseName,
			"Namespace": o.Namespace,
			"IsUpgrade": o.IsUpgrade,
			"IsInstall": !o.IsUpgrade,
			"Revision":  1,
			"Service":   "Helm",
		},
		"Chart":        c.Metadata,
		"Capabilities": o.Caps,
		"Files":        files,
		"Subcharts":    map[string]interface{}{},
	}

	t := template.New("gotpl")
	if o.Strict {
		t.Option("missingkey=error")
	} else {
		t.Option("missingkey=zero")
	}
	includedNames := map[string]int{}
	fm := baseFuncMap()
	fm["include"] = includeFun(t, includedNames)
	fm["tpl"] = tplFun(t, includedNames, o.Strict)
	fm["required"] = requiredFun
	t.Funcs(fm)

	byName := map[string]*file{}
	var names []string
	for _, f := range c.Templates {
		full := path.Join(c.Metadata.Name, f.Name)
		byName[full] = f
		names = append(names, full)
	}
	keys := sortTemplates(names)
	for _, name := range keys {
		if _, err := t.New(name).Parse(string(byName[name].Data)); err != nil {
			return nil, cleanupParseError(name, err)
		}
	}
	rendered := map[string]string{}
	for _, name := range keys {
		if strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		scope := make(map[string]interface{}, len(top)+1)
		for k, v := range top {
			scope[k] = v
		}
		scope["Template"] = map[string]interface{}{"Name": name, "BasePath": path.Join(c.Metadata.Name, "templates")}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, scope); err != nil {
			return nil, cleanupExecError(name, err)
		}
		rendered[name] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return rendered, nil
}

func cleanupParseError(filename string, err error) error {
	tokens := strings.Split(err.Error(), ": ")
	if len(tokens) == 1 {
		return fmt.Errorf("parse error in (%s): %s", filename, err)
	}
	location := tokens[1]
	errMsg := tokens[len(tokens)-1]
	return fmt.Errorf("parse error at (%s): %s", location, errMsg)
}

// cleanupExecError shortens text/template errors the way Helm does, and
// passes the message of fail/required through.
func cleanupExecError(filename string, err error) error {
	var execErr template.ExecError
	if !errors.As(err, &execErr) {
		return err
	}
	tokens := strings.SplitN(err.Error(), ": ", 3)
	if len(tokens) != 3 {
		return fmt.Errorf("execution error in (%s): %s", filename, err)
	}
	location := tokens[1]
	parts := strings.Split(tokens[2], ": ")
	errMsg := parts[len(parts)-1]
	if strings.Contains(tokens[2], "error calling") && len(parts) > 1 {
		errMsg = strings.Join(parts[1:], ": ")
	}
	return fmt.Errorf("execution error at (%s): %s", location, errMsg)
}

// ---- output: helm template's manifest assembly ----

// kubeVersionCheck applies Chart.yaml's kubeVersion constraint.
func kubeVersionCheck(c *chart, caps *Capabilities) error {
	if c.Metadata.KubeVersion == "" {
		return nil
	}
	ok, err := semverCheck(c.Metadata.KubeVersion, caps.KubeVersion.Version)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s",
			c.Metadata.KubeVersion, caps.KubeVersion.Version)
	}
	return nil
}

type manifest struct {
	Name    string
	Content string
	Kind    string
	Hook    bool
}

// assemble builds helm template's output from rendered files.
func assemble(c *chart, rendered map[string]string, includeCRDs bool, showOnly []string) (string, error) {
	var b bytes.Buffer
	if includeCRDs {
		for _, crd := range c.crdObjects() {
			fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", path.Join(c.Metadata.Name, crd.Name), string(crd.Data))
		}
	}
	hooks, manifests, err := sortManifests(rendered)
	if err != nil {
		return "", err
	}
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	var out bytes.Buffer
	fmt.Fprintln(&out, strings.TrimSpace(b.String()))
	for _, m := range hooks {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	if len(showOnly) == 0 {
		return out.String(), nil
	}
	docs := splitManifests(out.String())
	re := newSourceRegexp()
	var sel strings.Builder
	for _, f := range showOnly {
		f = filepath.ToSlash(f)
		missing := true
		for _, d := range docs {
			sm := re.FindStringSubmatch(d)
			if len(sm) == 0 {
				continue
			}
			if ok, _ := path.Match(f, sm[1]); !ok {
				continue
			}
			fmt.Fprintf(&sel, "---\n%s\n", d)
			missing = false
		}
		if missing {
			return "", fmt.Errorf("could not find template %s in chart", f)
		}
	}
	return sel.String(), nil
}
