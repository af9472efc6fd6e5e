package main

// Values the way Helm 3 builds them (helm.sh/helm/v3/pkg/cli/values and
// pkg/chartutil/coalesce.go): -f files are merged in order (maps deep-merged,
// later wins), then every --set/--set-string is parsed into the result
// (pkg/strvals), and the result is coalesced with the chart's values.yaml:
// user values win, maps are merged key by key, and a user null deletes the
// default. The coalesced values are checked against values.schema.json with
// the JSON-schema library Helm 3 uses (xeipuuv/gojsonschema).

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/Masterminds/semver"
	"github.com/xeipuuv/gojsonschema"
	"sigs.k8s.io/yaml"
)

func parseSemver(v string) (*semver.Version, error) { return semver.NewVersion(v) }

// readValuesFile parses one -f file (sigs.k8s.io/yaml, as chartutil.ReadValues).
func readValuesFile(name string) (map[string]interface{}, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = readAllStdin()
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", name, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// mergeMaps is pkg/cli/values.mergeMaps: b wins, nested maps merge.
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if bv, ok := out[k]; ok {
				if bvm, ok := bv.(map[string]interface{}); ok {
					out[k] = mergeMaps(bvm, vm)
					continue
				}
			}
		}
		out[k] = v
	}
	return out
}

// coalesce is chartutil.CoalesceValues for a chart without subcharts: the
// user's values v over the chart's defaults. A user null removes the key.
func coalesce(defaults, v map[string]interface{}) map[string]interface{} {
	out := deepCopyMap(v)
	coalesceInto(out, defaults, "")
	return out
}

func coalesceInto(dst, src map[string]interface{}, prefix string) {
	for key, val := range src {
		if value, ok := dst[key]; ok {
			if value == nil {
				delete(dst, key) // user null deletes the default
			} else if dstMap, ok := value.(map[string]interface{}); ok {
				if srcMap, ok := val.(map[string]interface{}); ok {
					coalesceInto(dstMap, srcMap, prefix+key+".")
				} else if val != nil {
					warnf("warning: skipped value for %s%s: Not a table.", prefix, key)
				}
			} else if _, ok := val.(map[string]interface{}); ok && val != nil {
				warnf("warning: destination for %s%s is a table. Ignoring non-table value (%v)", prefix, key, value)
			}
		} else {
			dst[key] = deepCopy(val)
		}
	}
}

func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		return deepCopyMap(t)
	case []interface{}:
		out := make([]interface{}, len(t))
		for i := range t {
			out[i] = deepCopy(t[i])
		}
		return out
	default:
		return v
	}
}

func deepCopyMap(m map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(m))
	for k, v := range m {
		out[k] = deepCopy(v)
	}
	return out
}

// validateSchema is chartutil.ValidateAgainstSchema for one chart.
func validateSchema(c *chart, vals map[string]interface{}) error {
	if len(c.Schema) == 0 {
		return nil
	}
	valuesJSON, err := json.Marshal(vals)
	if err != nil {
		return err
	}
	schemaLoader := gojsonschema.NewBytesLoader(c.Schema)
	result, err := gojsonschema.Validate(schemaLoader, gojsonschema.NewBytesLoader(valuesJSON))
	if err != nil {
		return fmt.Errorf("values.schema.json: %w", err)
	}
	if result.Valid() {
		return nil
	}
	var sb strings.Builder
	for _, desc := range result.Errors() {
		sb.WriteString(fmt.Sprintf("- %s\n", desc))
	}
	return fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n%s",
		c.Metadata.Name, sb.String())
}

// ---- --set parsing: the common subset of helm.sh/helm/v3/pkg/strvals ----
//
//   a=b,c.d=e          nested keys, several assignments
//   a.b\.c=d           a key containing a dot
//   a[0]=x,a[1].b=y    list elements
//   a={x,y,z}          a list value
//   a=b\,c             a comma inside a value
//   a=null             deletes the key (after coalescing)
// Values are typed as strvals.typedVal does: true/false, null, and int64
// (no leading zero); anything else is a string. --set-string keeps strings.

func parseSet(s string, dst map[string]interface{}, asString bool) error {
	for _, assign := range splitTop(s) {
		if assign == "" {
			continue
		}
		eq := indexUnescaped(assign, '=')
		if eq < 0 {
			return fmt.Errorf("key %q has no value", assign)
		}
		key, raw := assign[:eq], assign[eq+1:]
		var val interface{}
		if strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			items := []interface{}{}
			inner := raw[1 : len(raw)-1]
			if inner != "" {
				for _, it := range splitUnescaped(inner, ',') {
					items = append(items, typedVal(unescape(it), asString))
				}
			}
			val = items
		} else {
			val = typedVal(unescape(raw), asString)
		}
		if err := setPath(dst, splitUnescaped(key, '.'), val); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

func typedVal(v string, asString bool) interface{} {
	if asString {
		return v
	}
	switch strings.ToLower(v) {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if v == "0" {
		return int64(0)
	}
	if len(v) > 0 && v[0] != '0' {
		if iv, err := strconv.ParseInt(v, 10, 64); err == nil {
			return iv
		}
	}
	return v
}

// splitTop splits on commas that are not escaped and not inside {...}.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func splitUnescaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == sep {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func indexUnescaped(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == c {
			return i
		}
	}
	return -1
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// setPath assigns val at the dotted path; "name[3]" parts index lists,
// growing them with nulls as strvals does.
func setPath(m map[string]interface{}, parts []string, val interface{}) error {
	part := unescape(parts[0])
	last := len(parts) == 1
	name, idx, isList, err := splitIndex(part)
	if err != nil {
		return err
	}
	if !isList {
		if last {
			m[name] = val
			return nil
		}
		child, ok := m[name].(map[string]interface{})
		if !ok {
			child = map[string]interface{}{}
			m[name] = child
		}
		return setPath(child, parts[1:], val)
	}
	list, _ := m[name].([]interface{})
	for len(list) <= idx {
		list = append(list, nil)
	}
	if last {
		list[idx] = val
	} else {
		child, ok := list[idx].(map[string]interface{})
		if !ok {
			child = map[string]interface{}{}
			list[idx] = child
		}
		if err := setPath(child, parts[1:], val); err != nil {
			return err
		}
	}
	m[name] = list
	return nil
}

func splitIndex(part string) (string, int, bool, error) {
	open := strings.IndexByte(part, '[')
	if open < 0 || !strings.HasSuffix(part, "]") {
		return part, 0, false, nil
	}
	n, err := strconv.Atoi(part[open+1 : len(part)-1])
	if err != nil || n < 0 {
		return "", 0, false, fmt.Errorf("invalid list index in %q", part)
	}
	if n > 65536 {
		return "", 0, false, fmt.Errorf("list index %d is too large", n)
	}
	return part[:open], n, true, nil
}
