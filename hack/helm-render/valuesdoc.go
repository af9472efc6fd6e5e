package main

// values-table: the chart's values documentation, generated from the
// comments in values.yaml in helm-docs' convention:
//
//	# -- (type) Description, continued on following "#" lines.
//	# @default -- text shown instead of the value
//	key: value
//
// Every key with a "# --" comment is a row (Key, Type, Default,
// Description); every value in values.yaml must be documented by its own key
// or by an ancestor, so a new value cannot slip in undocumented. With
// --readme FILE the table replaces the text between "<!-- values:begin -->"
// and "<!-- values:end -->"; with --check too, nothing is written and a stale
// table is an error.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

func yamlUnmarshal(s string, v interface{}) error { return yaml.Unmarshal([]byte(s), v) }

type valueDoc struct {
	path        []string
	typ         string
	def         string
	description string
}

var (
	keyLine   = regexp.MustCompile(`^(\s*)("[^"]+"|'[^']+'|[A-Za-z0-9_.\-/]+):(\s|$)`)
	docStart  = regexp.MustCompile(`^\s*# -- ?(\(([a-z/]+)\) )?(.*)$`)
	docDefalt = regexp.MustCompile(`^\s*# @default -- ?(.*)$`)
	docCont   = regexp.MustCompile(`^\s*# ?(.*)$`)
)

func parseValuesDocs(raw []byte) ([]valueDoc, error) {
	type frame struct {
		indent int
		key    string
	}
	var stack []frame
	var docs []valueDoc
	var pending *valueDoc
	inDoc := false
	listIndent := -1
	for n, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if strings.HasPrefix(trimmed, "#") {
			if m := docStart.FindStringSubmatch(line); m != nil {
				pending = &valueDoc{typ: m[2], description: strings.TrimSpace(m[3])}
				inDoc = true
			} else if m := docDefalt.FindStringSubmatch(line); m != nil && pending != nil {
				pending.def = strings.TrimSpace(m[1])
			} else if m := docCont.FindStringSubmatch(line); m != nil && inDoc && pending != nil {
				pending.description = strings.TrimSpace(pending.description + " " + strings.TrimSpace(m[1]))
			}
			continue
		}
		inDoc = false
		if listIndent >= 0 {
			if indent > listIndent || (indent == listIndent && strings.HasPrefix(trimmed, "- ")) || (indent == listIndent && trimmed == "-") {
				continue
			}
			listIndent = -1
		}
		if strings.HasPrefix(trimmed, "- ") || trimmed == "-" {
			listIndent = indent
			pending = nil
			continue
		}
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			// a continuation of a multi-line scalar: not a key
			continue
		}
		key := strings.Trim(m[2], `"'`)
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, frame{indent: indent, key: key})
		if pending != nil {
			p := make([]string, len(stack))
			for i, f := range stack {
				p[i] = f.key
			}
			pending.path = p
			docs = append(docs, *pending)
			pending = nil
		}
		_ = n
	}
	return docs, nil
}

func lookupPath(m map[string]interface{}, p []string) (interface{}, bool) {
	var cur interface{} = m
	for _, k := range p {
		mm, ok := cur.(map[string]interface{})
		if !ok {
			return nil, false
		}
		cur, ok = mm[k]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

func typeOf(v interface{}) string {
	switch t := v.(type) {
	case nil:
		return "string"
	case bool:
		return "bool"
	case float64:
		if t == math.Trunc(t) {
			return "int"
		}
		return "float"
	case string:
		return "string"
	case []interface{}:
		return "list"
	case map[string]interface{}:
		return "object"
	}
	return "string"
}

func leafPaths(v interface{}, prefix []string, out *[][]string) {
	if m, ok := v.(map[string]interface{}); ok && len(m) > 0 {
		for k, c := range m {
			leafPaths(c, append(append([]string{}, prefix...), k), out)
		}
		return
	}
	*out = append(*out, prefix)
}

func escapeCell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

func buildValuesTable(c *chart) (string, error) {
	docs, err := parseValuesDocs(c.RawValues)
	if err != nil {
		return "", err
	}
	documented := map[string]bool{}
	var rows []string
	for _, d := range docs {
		key := strings.Join(d.path, ".")
		v, ok := lookupPath(c.Values, d.path)
		if !ok {
			return "", fmt.Errorf("values.yaml: documented key %s not found in the parsed values", key)
		}
		documented[key] = true
		typ := d.typ
		if typ == "" {
			typ = typeOf(v)
		}
		def := d.def
		if def == "" {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(v); err != nil {
				return "", err
			}
			def = "`" + strings.TrimSpace(buf.String()) + "`"
		}
		if d.description == "" {
			return "", fmt.Errorf("values.yaml: %s has an empty description", key)
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s |", escapeCell(key), typ, escapeCell(def), escapeCell(d.description)))
	}
	var leaves [][]string
	leafPaths(c.Values, nil, &leaves)
	var undocumented []string
	for _, l := range leaves {
		ok := false
		for i := len(l); i > 0; i-- {
			if documented[strings.Join(l[:i], ".")] {
				ok = true
				break
			}
		}
		if !ok {
			undocumented = append(undocumented, strings.Join(l, "."))
		}
	}
	if len(undocumented) > 0 {
		sort.Strings(undocumented)
		return "", fmt.Errorf("values.yaml: no \"# --\" comment on these values or a parent: %s", strings.Join(undocumented, ", "))
	}
	return "| Key | Type | Default | Description |\n|-----|------|---------|-------------|\n" + strings.Join(rows, "\n") + "\n", nil
}

const (
	valuesBegin = "<!-- values:begin -->"
	valuesEnd   = "<!-- values:end -->"
)

func valuesTable(chartDir, readme string, check bool) error {
	c, err := loadChart(chartDir)
	if err != nil {
		return err
	}
	table, err := buildValuesTable(c)
	if err != nil {
		return err
	}
	if readme == "" {
		fmt.Print(table)
		return nil
	}
	old, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	s := string(old)
	b, e := strings.Index(s, valuesBegin), strings.Index(s, valuesEnd)
	if b < 0 || e < b {
		return fmt.Errorf("%s: markers %s and %s not found", readme, valuesBegin, valuesEnd)
	}
	updated := s[:b+len(valuesBegin)] + "\n" + table + s[e:]
	if updated == s {
		return nil
	}
	if check {
		return fmt.Errorf("%s: the values table is out of date; run hack/chart-docs.sh", readme)
	}
	return os.WriteFile(readme, []byte(updated), 0o644)
}
