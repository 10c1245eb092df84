package cloudwatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/smithy-go/encoding/cbor"
)

// The three protocols meet in one tree: a request decodes into nested
// map[string]any and []any whose leaves are what the protocol carried
// (json.Number, string, bool, time.Time, CBOR numbers), and params reads
// members from it with the coercions its protocol allows. Results go the
// other way: operations build a obj tree that each protocol encodes.

// params is one structure of a request.
type params struct {
	m    map[string]any
	path string // the structure's place in the request, for messages
	// lenient is set for awsQuery, where every leaf is a string that stands
	// for a number, boolean or timestamp as the member's type says.
	lenient bool
	errp    *error // the first error met while reading, shared by the tree
}

func newParams(m map[string]any, lenient bool) params {
	return params{m: m, lenient: lenient, errp: new(error)}
}

// err returns the first error met while reading the request.
func (p params) err() error { return *p.errp }

func (p params) fail(err *apiError) {
	if *p.errp == nil {
		*p.errp = err
	}
}

func (p params) name(member string) string {
	if p.path == "" {
		return member
	}
	return p.path + "." + member
}

// get returns a member's value; null and CBOR undefined count as absent.
func (p params) get(member string) (any, bool) {
	v, ok := p.m[member]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

// has reports whether a member is present with something in it: an empty
// list or string (which awsQuery sends for an empty list) counts as absent.
func (p params) has(member string) bool {
	v, ok := p.get(member)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

func (p params) typeErr(member, want string, v any) {
	p.fail(errValidation("%s must be %s, not %s.", p.name(member), want, describe(v)))
}

// shortValue prints a leaf for a message, cut short.
func shortValue(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

func describe(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("the string %q", v)
	case map[string]any:
		return "a structure"
	case []any:
		return "a list"
	case bool:
		return "a boolean"
	case time.Time:
		return "a timestamp"
	case []byte:
		return "a byte string"
	}
	return "a number"
}

func (p params) str(member string) string {
	v, ok := p.get(member)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.typeErr(member, "a string", v)
	} else if !utf8.ValidString(s) {
		p.fail(errValidation("%s is not valid UTF-8.", p.name(member)))
		return ""
	}
	return s
}

// int reads an Integer member (32-bit, as CloudWatch's model declares).
func (p params) int(member string) (int, bool) {
	v, ok := p.get(member)
	if !ok {
		return 0, false
	}
	var (
		n   int64
		err error
	)
	switch v := v.(type) {
	case json.Number:
		n, err = parseInt(string(v))
	case string:
		if !p.lenient {
			p.typeErr(member, "an integer", v)
			return 0, false
		}
		n, err = parseInt(strings.TrimSpace(v))
	case cbor.Uint, cbor.NegInt:
		f, _ := cborNumber(v)
		if f > math.MaxInt32 || f < math.MinInt32 {
			err = errRange
		}
		n = int64(f)
	default:
		if f, ok := cborFloat(v); ok && f == math.Trunc(f) && math.Abs(f) <= math.MaxInt32 {
			return int(f), true
		}
		p.typeErr(member, "an integer", v)
		return 0, false
	}
	if err == nil && (n > math.MaxInt32 || n < math.MinInt32) {
		err = errRange
	}
	if err != nil {
		p.fail(errValidation("%s must be an integer from %d to %d, got %s.", p.name(member), math.MinInt32, math.MaxInt32, shortValue(v)))
		return 0, false
	}
	return int(n), true
}

var errRange = errors.New("out of range")

func parseInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return n, nil
	}
	// 60.0 is an integer too.
	f, ferr := strconv.ParseFloat(s, 64)
	if ferr != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0, err
	}
	return int64(f), nil
}

// float reads a Double member. Smithy's JSON and query encodings spell the
// non-finite values NaN, Infinity and -Infinity.
func (p params) float(member string) (float64, bool) {
	v, ok := p.get(member)
	if !ok {
		return 0, false
	}
	if f, ok := p.number(v); ok {
		return f, true
	}
	p.typeErr(member, "a number", v)
	return 0, false
}

// floats reads a List member whose elements are numbers.
func (p params) floats(member string) []float64 {
	l := p.list(member)
	out := make([]float64, 0, len(l))
	for i, v := range l {
		f, ok := p.number(v)
		if !ok {
			p.fail(errValidation("%s[%d] must be a number, not %s.", p.name(member), i, describe(v)))
			return nil
		}
		out = append(out, f)
	}
	return out
}

// number reads a number in any of the protocols' forms.
func (p params) number(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return f, true
		}
	case string:
		switch v {
		case "NaN":
			return math.NaN(), true
		case "Infinity":
			return math.Inf(1), true
		case "-Infinity":
			return math.Inf(-1), true
		}
		if p.lenient {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f, true
			}
		}
	default:
		if f, ok := cborNumber(v); ok {
			return f, true
		}
	}
	return 0, false
}

func (p params) bool(member string) *bool {
	v, ok := p.get(member)
	if !ok {
		return nil
	}
	switch v := v.(type) {
	case bool:
		return &v
	case string:
		if p.lenient {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true":
				b := true
				return &b
			case "false":
				b := false
				return &b
			}
		}
	}
	p.typeErr(member, "a boolean", v)
	return nil
}

// time reads a Timestamp member: a CBOR epoch tag, epoch seconds as a JSON
// number, or an ISO 8601 string (awsQuery's form; the JSON protocols accept
// it too, as CloudWatch does).
func (p params) time(member string) (time.Time, bool) {
	v, ok := p.get(member)
	if !ok {
		return time.Time{}, false
	}
	switch v := v.(type) {
	case time.Time:
		return v, true
	case json.Number:
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			if t, ok := epochTime(f); ok {
				return t, true
			}
		}
	case string:
		if t, ok := parseTimestamp(v); ok {
			return t, true
		}
	default:
		// A bare CBOR number where a timestamp belongs: read it as epoch
		// seconds, as the JSON protocol does.
		if f, ok := cborNumber(v); ok {
			if t, ok := epochTime(f); ok {
				return t, true
			}
		}
	}
	p.fail(errValidation("%s must be a timestamp (ISO 8601, or seconds since the epoch), not %s.", p.name(member), describe(v)))
	return time.Time{}, false
}

// epochTime converts seconds since the epoch, to the millisecond, within the
// years 0001 to 9999.
func epochTime(f float64) (time.Time, bool) {
	const lo, hi = -62135596800, 253402300799
	if math.IsNaN(f) || f < lo || f > hi {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(math.Round(f * 1000))).UTC(), true
}

func parseTimestamp(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return epochTime(f)
	}
	return time.Time{}, false
}

// list reads a List member as its elements; awsQuery's empty list ("") is
// an empty list.
func (p params) list(member string) []any {
	v, ok := p.get(member)
	if !ok {
		return nil
	}
	switch v := v.(type) {
	case []any:
		return v
	case string:
		if p.lenient && v == "" {
			return nil
		}
	}
	p.typeErr(member, "a list", v)
	return nil
}

func (p params) strs(member string) []string {
	l := p.list(member)
	out := make([]string, 0, len(l))
	for i, v := range l {
		s, ok := v.(string)
		if !ok {
			p.fail(errValidation("%s[%d] must be a string, not %s.", p.name(member), i, describe(v)))
			return nil
		}
		if !utf8.ValidString(s) {
			p.fail(errValidation("%s[%d] is not valid UTF-8.", p.name(member), i))
			return nil
		}
		out = append(out, s)
	}
	return out
}

// structs reads a List member whose elements are structures.
func (p params) structs(member string) []params {
	l := p.list(member)
	out := make([]params, 0, len(l))
	for i, v := range l {
		m, ok := v.(map[string]any)
		if !ok {
			if s, isStr := v.(string); isStr && p.lenient && s == "" {
				m = map[string]any{}
			} else {
				p.fail(errValidation("%s[%d] must be a structure, not %s.", p.name(member), i, describe(v)))
				return nil
			}
		}
		out = append(out, params{m: m, path: fmt.Sprintf("%s[%d]", p.name(member), i), lenient: p.lenient, errp: p.errp})
	}
	return out
}

// sub reads a structure member.
func (p params) sub(member string) (params, bool) {
	v, ok := p.get(member)
	if !ok {
		return params{}, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.typeErr(member, "a structure", v)
		return params{}, false
	}
	return params{m: m, path: p.name(member), lenient: p.lenient, errp: p.errp}, true
}

// --- encoding results ---

// obj is a structure of a result, its members in order (the XML encoding
// keeps it).
type obj []kv

type kv struct {
	k string
	v any
}

// mapMember is a map member (string to value), such as ExtendedStatistics.
type mapMember []kv

func (o *obj) add(k string, v any) { *o = append(*o, kv{k, v}) }

// addStr adds a string member unless it is empty.
func (o *obj) addStr(k, v string) {
	if v != "" {
		o.add(k, v)
	}
}

// addTime adds a timestamp member unless it is zero.
func (o *obj) addTime(k string, t time.Time) {
	if !t.IsZero() {
		o.add(k, t)
	}
}

// formatFloat writes a double as Smithy's text encodings do.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
