package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// applySections are the lists an apply file holds, in the order applied,
// with the field that names each resource.
var applySections = []struct{ key, nameField string }{
	{"models", "ModelName"},
	{"endpointConfigs", "EndpointConfigName"},
	{"alarms", "AlarmName"},
	{"endpoints", "EndpointName"},
}

// parseApplyFile reads YAML (or JSON) strictly: an unknown key or a value of
// the wrong type is an error that names the file, the resource (its list,
// index and name) and the line, e.g.
//
//	demo.yaml:5: models[0] "demo-v1": unknown field "Imag" (did you mean "Image"?)
//
// The YAML is turned into JSON, which has no lines left, so the line is
// found again in the text: the key within the resource's block.
func parseApplyFile(file string, data []byte) (*ApplyFile, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %w", file, err)
	}
	var f ApplyFile
	if t := bytes.TrimSpace(j); len(t) == 0 || string(t) == "null" {
		return &f, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(j, &top); err != nil {
		return nil, fmt.Errorf("%s: want a mapping of models, endpointConfigs, alarms and endpoints", file)
	}
	lines := strings.Split(string(data), "\n")
	for key := range top {
		known := false
		for _, s := range applySections {
			known = known || s.key == key
		}
		if !known {
			return nil, fmt.Errorf("%s%s: unknown section %q: want models, endpointConfigs, alarms or endpoints%s",
				file, lineSuffix(keyLine(lines, 0, len(lines), key)), key, didYouMean(key, []string{"models", "endpointConfigs", "alarms", "endpoints"}))
		}
	}
	targets := map[string]any{"models": &f.Models, "endpointConfigs": &f.EndpointConfigs, "alarms": &f.Alarms, "endpoints": &f.Endpoints}
	for _, s := range applySections {
		raw, ok := top[s.key]
		if !ok || string(raw) == "null" {
			continue
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("%s%s: %s must be a list", file, lineSuffix(keyLine(lines, 0, len(lines), s.key)), s.key)
		}
		list := reflect.ValueOf(targets[s.key]).Elem()
		list.Set(reflect.MakeSlice(list.Type(), len(items), len(items)))
		for i, item := range items {
			dec := json.NewDecoder(bytes.NewReader(item))
			dec.DisallowUnknownFields()
			if err := dec.Decode(list.Index(i).Addr().Interface()); err != nil {
				return nil, itemError(file, lines, s.key, s.nameField, i, item, list.Type().Elem(), err)
			}
		}
	}
	return &f, nil
}

// itemError says what is wrong with item i of a section, and where.
func itemError(file string, lines []string, section, nameField string, i int, item json.RawMessage, typ reflect.Type, err error) error {
	var named map[string]any
	json.Unmarshal(item, &named)
	what := fmt.Sprintf("%s[%d]", section, i)
	if n, ok := named[nameField].(string); ok && n != "" {
		what += fmt.Sprintf(" %q", n)
	}
	from, to := itemBlock(lines, section, i)
	var typeErr *json.UnmarshalTypeError
	switch {
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		key := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fmt.Errorf("%s%s: %s: unknown field %q%s", file, lineSuffix(keyLine(lines, from, to, key)), what, key, didYouMean(key, jsonFields(typ)))
	case errors.As(err, &typeErr) && typeErr.Field != "":
		parts := strings.Split(typeErr.Field, ".")
		return fmt.Errorf("%s%s: %s: %s must be %s, not %s", file, lineSuffix(keyLine(lines, from, to, parts[len(parts)-1])), what, typeErr.Field, typeErr.Type, typeErr.Value)
	}
	return fmt.Errorf("%s%s: %s: %v", file, lineSuffix(from+1), what, err)
}

func lineSuffix(line int) string {
	if line <= 0 {
		return ""
	}
	return fmt.Sprintf(":%d", line)
}

var dashRE = regexp.MustCompile(`^(\s*)-(\s|$)`)

// itemBlock finds the lines [from, to) of item i of a block-style YAML list
// under the top-level key section; the whole file if it cannot tell (flow
// style, JSON).
func itemBlock(lines []string, section string, i int) (int, int) {
	start := keyLine(lines, 0, len(lines), section)
	if start <= 0 {
		return 0, len(lines)
	}
	end := len(lines)
	indent := -1
	var items []int
	for n := start; n < len(lines); n++ { // start is 1-based: the line after the key
		l := lines[n]
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "-") {
			end = n // the next top-level key
			break
		}
		if m := dashRE.FindStringSubmatch(l); m != nil {
			if indent < 0 {
				indent = len(m[1])
			}
			if len(m[1]) == indent {
				items = append(items, n)
			}
		}
	}
	if i >= len(items) {
		return 0, len(lines)
	}
	to := end
	if i+1 < len(items) {
		to = items[i+1]
	}
	return items[i], to
}

// keyLine is the 1-based line of the first "key:" in lines[from:to], then
// in the whole file; 0 if none.
func keyLine(lines []string, from, to int, key string) int {
	re := regexp.MustCompile(`(^|[\s{,-])["']?` + regexp.QuoteMeta(key) + `["']?\s*:`)
	for _, r := range [][2]int{{from, to}, {0, len(lines)}} {
		for n := r[0]; n < r[1] && n < len(lines); n++ {
			if re.MatchString(lines[n]) {
				return n + 1
			}
		}
	}
	return 0
}

// jsonFields lists the JSON names of the fields of t and of every struct
// within it, for suggestions.
func jsonFields(t reflect.Type) []string {
	seen := map[reflect.Type]bool{}
	var names []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			names = append(names, name)
			walk(sf.Type)
		}
	}
	walk(t)
	return names
}

// didYouMean suggests the known name closest to s, if one is close.
func didYouMean(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(s), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
