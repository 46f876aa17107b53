package config

import (
	"reflect"
	"slices"
	"strings"
)

// withSuggestions adds "did you mean" to each "unknown field" problem whose name is close to a field the
// file may have at that place: a misspelt field otherwise gives "unknown field" here and "is required"
// there, and the reader has to connect the two.
func withSuggestions(ps []Problem) {
	for i, p := range ps {
		if p.Detail != "unknown field" {
			continue
		}
		parent, name := splitLast(p.Pointer)
		if s := closest(name, fieldsAt(parent)); s != "" {
			ps[i].Detail += "; did you mean " + s + "?"
		}
	}
}

// splitLast splits a JSON pointer into its parent and its last (unescaped) token.
func splitLast(ptr string) (string, string) {
	i := strings.LastIndexByte(ptr, '/')
	if i < 0 {
		return "", ""
	}
	return ptr[:i], unescapePointer(ptr[i+1:])
}

func unescapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// fieldsAt returns the JSON field names of the object at ptr in a config file, read from the Go types
// (whose json tags are the file's field names), or nil when ptr is not an object with fixed fields.
func fieldsAt(ptr string) []string {
	t := reflect.TypeFor[Config]()
	toks := []string{}
	if ptr != "" {
		toks = strings.Split(ptr[1:], "/")
	}
	for _, tok := range toks {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map, reflect.Slice, reflect.Array:
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByJSONName(t, unescapePointer(tok))
			if !ok {
				return nil
			}
			t = f.Type
		default:
			return nil
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for f := range t.Fields() {
		if name := jsonName(f); name != "" {
			names = append(names, name)
		}
	}
	return names
}

func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonName is the field's name in the file, or "" for a field that is not in the file.
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}

// closest returns the candidate nearest to name: the same apart from case, '-' and '_' (call_timeout for
// callTimeout), or within an edit distance of about a third of its length. "" when none is near.
func closest(name string, candidates []string) string {
	fold := func(s string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
	}
	best, bestDist := "", -1
	for _, c := range slices.Sorted(slices.Values(candidates)) {
		if fold(c) == fold(name) {
			return c
		}
		d := editDistance(strings.ToLower(name), strings.ToLower(c))
		if d <= max(1, len(c)/3) && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counted in bytes (field names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
