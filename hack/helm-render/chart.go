package main

// Loading a chart directory the way Helm 3's loader does
// (helm.sh/helm/v3/pkg/chart/loader: LoadDir, LoadFiles): Chart.yaml becomes
// the metadata, values.yaml the default values (parsed with sigs.k8s.io/yaml,
// so numbers are float64 exactly as in Helm), values.schema.json the schema,
// templates/ the templates, everything else (crds/ included) .Files.
// .helmignore is honoured for the usual patterns.

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Maintainer mirrors helm.sh/helm/v3/pkg/chart.Maintainer.
type Maintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

// Dependency mirrors the fields of helm.sh/helm/v3/pkg/chart.Dependency that
// Chart.yaml may carry. Subcharts are not supported by this renderer.
type Dependency struct {
	Name       string   `json:"name"`
	Version    string   `json:"version,omitempty"`
	Repository string   `json:"repository"`
	Condition  string   `json:"condition,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Enabled    bool     `json:"enabled,omitempty"`
	Alias      string   `json:"alias,omitempty"`
}

// Metadata mirrors helm.sh/helm/v3/pkg/chart.Metadata: templates see it as
// .Chart, with Helm's capitalised field names (.Chart.Name, .Chart.AppVersion).
type Metadata struct {
	Name         string            `json:"name,omitempty"`
	Home         string            `json:"home,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Version      string            `json:"version,omitempty"`
	Description  string            `json:"description,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Maintainers  []*Maintainer     `json:"maintainers,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	APIVersion   string            `json:"apiVersion,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Tags         string            `json:"tags,omitempty"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Dependencies []*Dependency     `json:"dependencies,omitempty"`
	Type         string            `json:"type,omitempty"`
}

type file struct {
	Name string // relative to the chart root, slash-separated
	Data []byte
}

type chart struct {
	Dir       string
	Metadata  *Metadata
	Values    map[string]interface{}
	RawValues []byte
	Schema    []byte
	Templates []*file
	Files     []*file
}

func loadChart(dir string) (*chart, error) {
	c := &chart{Dir: dir}
	ignore, err := loadHelmignore(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ignore.ignored(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil {
			return nil, err
		}
		switch {
		case n == "Chart.yaml":
			c.Metadata = &Metadata{}
			if err := yaml.Unmarshal(data, c.Metadata); err != nil {
				return nil, fmt.Errorf("cannot load Chart.yaml: %w", err)
			}
		case n == "values.yaml":
			c.RawValues = data
			c.Values = map[string]interface{}{}
			if err := yaml.Unmarshal(data, &c.Values); err != nil {
				return nil, fmt.Errorf("cannot load values.yaml: %w", err)
			}
			if c.Values == nil {
				c.Values = map[string]interface{}{}
			}
		case n == "values.schema.json":
			c.Schema = data
		case n == "Chart.lock" || n == "requirements.yaml" || n == "requirements.lock":
			return nil, fmt.Errorf("%s: chart dependencies are not supported by helm-render", n)
		case strings.HasPrefix(n, "charts/"):
			return nil, fmt.Errorf("%s: subcharts are not supported by helm-render", n)
		case strings.HasPrefix(n, "templates/"):
			c.Templates = append(c.Templates, &file{Name: n, Data: data})
		default:
			c.Files = append(c.Files, &file{Name: n, Data: data})
		}
	}
	if c.Metadata == nil {
		return nil, fmt.Errorf("%s: Chart.yaml file is missing", dir)
	}
	if err := validateMetadata(c.Metadata); err != nil {
		return nil, err
	}
	if c.Values == nil {
		c.Values = map[string]interface{}{}
	}
	return c, nil
}

// validateMetadata applies the checks of Helm's Metadata.Validate that matter
// for a v2 application chart.
func validateMetadata(m *Metadata) error {
	if m.APIVersion == "" {
		return fmt.Errorf("validation: chart.metadata.apiVersion is required")
	}
	if m.APIVersion != "v2" {
		return fmt.Errorf("validation: chart.metadata.apiVersion %q: only v2 charts are supported", m.APIVersion)
	}
	if m.Name == "" {
		return fmt.Errorf("validation: chart.metadata.name is required")
	}
	if m.Name != path.Base(m.Name) || strings.ContainsAny(m.Name, "/\\") {
		return fmt.Errorf("validation: chart.metadata.name %q is invalid", m.Name)
	}
	if m.Version == "" {
		return fmt.Errorf("validation: chart.metadata.version is required")
	}
	if _, err := parseSemver(m.Version); err != nil {
		return fmt.Errorf("validation: chart.metadata.version %q is invalid", m.Version)
	}
	if m.Type != "" && m.Type != "application" && m.Type != "library" {
		return fmt.Errorf("validation: chart.metadata.type must be application or library")
	}
	if len(m.Dependencies) > 0 {
		return fmt.Errorf("validation: chart dependencies are not supported by helm-render")
	}
	return nil
}

// crdObjects returns the crds/ files Helm installs (and prints with
// --include-crds): .yaml, .yml and .json files, in file name order.
func (c *chart) crdObjects() []*file {
	var out []*file
	for _, f := range c.Files {
		if strings.HasPrefix(f.Name, "crds/") {
			switch path.Ext(f.Name) {
			case ".yaml", ".yml", ".json":
				out = append(out, f)
			}
		}
	}
	return out
}

// helmignore: the subset of .helmignore (gitignore-like) Helm's ignore
// package supports: globs matched against the base name or the whole path,
// "dir/" patterns for directories, and "!" negation.
type ignoreRule struct {
	pattern string
	dirOnly bool
	negate  bool
}

type ignoreRules []ignoreRule

func loadHelmignore(dir string) (ignoreRules, error) {
	data, err := os.ReadFile(filepath.Join(dir, ".helmignore"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rules ignoreRules
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		if strings.HasPrefix(line, "!") {
			r.negate = true
			line = line[1:]
		}
		if strings.HasSuffix(line, "/") {
			r.dirOnly = true
			line = strings.TrimSuffix(line, "/")
		}
		r.pattern = strings.TrimPrefix(line, "/")
		rules = append(rules, r)
	}
	return rules, nil
}

func (rules ignoreRules) ignored(rel string, isDir bool) bool {
	// Helm never ignores the chart's own metadata files.
	if rel == "Chart.yaml" || rel == "values.yaml" || rel == "values.schema.json" {
		return false
	}
	out := false
	for _, r := range rules {
		if r.dirOnly && !isDir {
			continue
		}
		m, _ := path.Match(r.pattern, rel)
		if !m && !strings.Contains(r.pattern, "/") {
			m, _ = path.Match(r.pattern, path.Base(rel))
		}
		if m {
			out = !r.negate
		}
	}
	return out
}
