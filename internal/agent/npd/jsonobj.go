package npd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// object is one JSON object of a config file, read field by field so that
// every field the loader does not know can be reported, and every decoding
// error names its field.
//
// Keys match case-insensitively, as they do for node-problem-detector
// (encoding/json into structs), so a file NPD accepts is accepted here.
type object struct {
	where  string                     // field path of the object, "" at the root
	fields map[string]json.RawMessage // by lower-case key
	names  map[string]string          // lower-case key -> key as written
	used   map[string]bool
}

func newObject(where string, raw json.RawMessage) (*object, error) {
	o := &object{where: where, fields: map[string]json.RawMessage{}, names: map[string]string{}, used: map[string]bool{}}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, o.fieldErr("", fmt.Errorf("must be an object: %w", err))
	}
	if m == nil {
		return nil, o.fieldErr("", errors.New("must be an object, not null"))
	}
	for k, v := range m {
		lk := strings.ToLower(k)
		o.fields[lk] = v
		o.names[lk] = k
	}
	return o, nil
}

// path is the field path of key in o, e.g. rules[2].pattern.
func (o *object) path(key string) string {
	switch {
	case o.where == "":
		return key
	case key == "":
		return o.where
	default:
		return o.where + "." + key
	}
}

func (o *object) fieldErr(key string, err error) error {
	if p := o.path(key); p != "" {
		return fmt.Errorf("%s: %w", p, err)
	}
	return err
}

// has tells whether key is present (and not null).
func (o *object) has(key string) bool {
	raw, ok := o.fields[strings.ToLower(key)]
	return ok && !isNull(raw)
}

// get decodes key into dst if it is present and not null. A JSON null is
// treated as absent, as encoding/json does for NPD.
func (o *object) get(key string, dst any) (bool, error) {
	lk := strings.ToLower(key)
	raw, ok := o.fields[lk]
	if !ok {
		return false, nil
	}
	o.used[lk] = true
	if isNull(raw) {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			err = fmt.Errorf("must be %s, not a JSON %s", jsonKind(dst), te.Value)
		}
		return true, o.fieldErr(key, err)
	}
	return true, nil
}

// raw returns key's raw value and marks it used.
func (o *object) raw(key string) (json.RawMessage, bool) {
	lk := strings.ToLower(key)
	raw, ok := o.fields[lk]
	if ok {
		o.used[lk] = true
	}
	return raw, ok && !isNull(raw)
}

// unused returns the field paths of the keys never read, sorted.
func (o *object) unused() []string {
	var out []string
	for lk, name := range o.names {
		if !o.used[lk] {
			out = append(out, o.path(name))
		}
	}
	slices.Sort(out)
	return out
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func jsonKind(dst any) string {
	switch dst.(type) {
	case *string, **string:
		return "a string"
	case *int, **int:
		return "an integer"
	case *bool, **bool:
		return "true or false"
	case *[]string:
		return "a list of strings"
	case *map[string]string:
		return "an object of strings"
	case *[]json.RawMessage:
		return "a list"
	}
	return "of another type"
}

// syntaxError turns a JSON syntax error into one with a line and column.
func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	// Offset is just past the offending byte.
	off := max(min(int(se.Offset)-1, len(data)), 0)
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("invalid JSON at line %d, column %d: %w", line, col, se)
}
