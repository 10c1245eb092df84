package cloudwatch

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/smithy-go/encoding/cbor"
)

// The three protocols meet in one tree: a request decodes into nested
// map[string]any and []any whose leaves are what the protocol carried
// (json.Number, string, bool, time.Time, CBOR numbers), and cwParams reads
// members from it with the coercions its protocol allows. Results go the
// other way: operations build a cwObj tree that each protocol encodes.

// cwParams is one structure of a request.
type cwParams struct {
	m    map[string]any
	path string // the structure's place in the request, for messages
	// lenient is set for awsQuery, where every leaf is a string that stands
	// for a number, boolean or timestamp as the member's type says.
	lenient bool
	errp    *error // the first error met while reading, shared by the tree
}

func newCWParams(m map[string]any, lenient bool) cwParams {
	return cwParams{m: m, lenient: lenient, errp: new(error)}
}

// err returns the first error met while reading the request.
func (p cwParams) err() error { return *p.errp }

func (p cwParams) fail(err *cwError) {
	if *p.errp == nil {
		*p.errp = err
	}
}

func (p cwParams) name(member string) string {
	if p.path == "" {
		return member
	}
	return p.path + "." + member
}

// get returns a member's value; null and CBOR undefined count as absent.
func (p cwParams) get(member string) (any, bool) {
	v, ok := p.m[member]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

// has reports whether a member is present with something in it: an empty
// list or string (which awsQuery sends for an empty list) counts as absent.
func (p cwParams) has(member string) bool {
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

func (p cwParams) typeErr(member, want string, v any) {
	p.fail(cwErrValidation("%s must be %s, not %s.", p.name(member), want, cwDescribe(v)))
}

// cwShortValue prints a leaf for a message, cut short.
func cwShortValue(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

func cwDescribe(v any) string {
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

func (p cwParams) str(member string) string {
	v, ok := p.get(member)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.typeErr(member, "a string", v)
	} else if !utf8.ValidString(s) {
		p.fail(cwErrValidation("%s is not valid UTF-8.", p.name(member)))
		return ""
	}
	return s
}

// int reads an Integer member (32-bit, as CloudWatch's model declares).
func (p cwParams) int(member string) (int, bool) {
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
		n, err = cwParseInt(string(v))
	case string:
		if !p.lenient {
			p.typeErr(member, "an integer", v)
			return 0, false
		}
		n, err = cwParseInt(strings.TrimSpace(v))
	case cbor.Uint, cbor.NegInt:
		f, _ := cwCBORNumber(v)
		if f > math.MaxInt32 || f < math.MinInt32 {
			err = errCWRange
		}
		n = int64(f)
	default:
		if f, ok := cwCBORFloat(v); ok && f == math.Trunc(f) && math.Abs(f) <= math.MaxInt32 {
			return int(f), true
		}
		p.typeErr(member, "an integer", v)
		return 0, false
	}
	if err == nil && (n > math.MaxInt32 || n < math.MinInt32) {
		err = errCWRange
	}
	if err != nil {
		p.fail(cwErrValidation("%s must be an integer from %d to %d, got %s.", p.name(member), math.MinInt32, math.MaxInt32, cwShortValue(v)))
		return 0, false
	}
	return int(n), true
}

var errCWRange = errors.New("out of range")

func cwParseInt(s string) (int64, error) {
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

func cwCBORFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case cbor.Float32:
		return float64(v), true
	case cbor.Float64:
		return float64(v), true
	}
	return 0, false
}

// cwCBORNumber returns any CBOR number as a float64. NegInt(0) stands for
// -2^64 (CBOR's negative integers are -1 minus their argument).
func cwCBORNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case cbor.Uint:
		return float64(v), true
	case cbor.NegInt:
		if v == 0 {
			return -math.Exp2(64), true
		}
		return -float64(v), true
	}
	return cwCBORFloat(v)
}

// float reads a Double member. Smithy's JSON and query encodings spell the
// non-finite values NaN, Infinity and -Infinity.
func (p cwParams) float(member string) (float64, bool) {
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
func (p cwParams) floats(member string) []float64 {
	l := p.list(member)
	out := make([]float64, 0, len(l))
	for i, v := range l {
		f, ok := p.number(v)
		if !ok {
			p.fail(cwErrValidation("%s[%d] must be a number, not %s.", p.name(member), i, cwDescribe(v)))
			return nil
		}
		out = append(out, f)
	}
	return out
}

// number reads a number in any of the protocols' forms.
func (p cwParams) number(v any) (float64, bool) {
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
		if f, ok := cwCBORNumber(v); ok {
			return f, true
		}
	}
	return 0, false
}

func (p cwParams) bool(member string) *bool {
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
func (p cwParams) time(member string) (time.Time, bool) {
	v, ok := p.get(member)
	if !ok {
		return time.Time{}, false
	}
	switch v := v.(type) {
	case time.Time:
		return v, true
	case json.Number:
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			if t, ok := cwEpochTime(f); ok {
				return t, true
			}
		}
	case string:
		if t, ok := cwParseTimestamp(v); ok {
			return t, true
		}
	default:
		// A bare CBOR number where a timestamp belongs: read it as epoch
		// seconds, as the JSON protocol does.
		if f, ok := cwCBORNumber(v); ok {
			if t, ok := cwEpochTime(f); ok {
				return t, true
			}
		}
	}
	p.fail(cwErrValidation("%s must be a timestamp (ISO 8601, or seconds since the epoch), not %s.", p.name(member), cwDescribe(v)))
	return time.Time{}, false
}

// cwEpochTime converts seconds since the epoch, to the millisecond, within the
// years 0001 to 9999.
func cwEpochTime(f float64) (time.Time, bool) {
	const lo, hi = -62135596800, 253402300799
	if math.IsNaN(f) || f < lo || f > hi {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(math.Round(f * 1000))).UTC(), true
}

func cwParseTimestamp(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return cwEpochTime(f)
	}
	return time.Time{}, false
}

// list reads a List member as its elements; awsQuery's empty list ("") is
// an empty list.
func (p cwParams) list(member string) []any {
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

func (p cwParams) strs(member string) []string {
	l := p.list(member)
	out := make([]string, 0, len(l))
	for i, v := range l {
		s, ok := v.(string)
		if !ok {
			p.fail(cwErrValidation("%s[%d] must be a string, not %s.", p.name(member), i, cwDescribe(v)))
			return nil
		}
		if !utf8.ValidString(s) {
			p.fail(cwErrValidation("%s[%d] is not valid UTF-8.", p.name(member), i))
			return nil
		}
		out = append(out, s)
	}
	return out
}

// structs reads a List member whose elements are structures.
func (p cwParams) structs(member string) []cwParams {
	l := p.list(member)
	out := make([]cwParams, 0, len(l))
	for i, v := range l {
		m, ok := v.(map[string]any)
		if !ok {
			if s, isStr := v.(string); isStr && p.lenient && s == "" {
				m = map[string]any{}
			} else {
				p.fail(cwErrValidation("%s[%d] must be a structure, not %s.", p.name(member), i, cwDescribe(v)))
				return nil
			}
		}
		out = append(out, cwParams{m: m, path: fmt.Sprintf("%s[%d]", p.name(member), i), lenient: p.lenient, errp: p.errp})
	}
	return out
}

// sub reads a structure member.
func (p cwParams) sub(member string) (cwParams, bool) {
	v, ok := p.get(member)
	if !ok {
		return cwParams{}, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.typeErr(member, "a structure", v)
		return cwParams{}, false
	}
	return cwParams{m: m, path: p.name(member), lenient: p.lenient, errp: p.errp}, true
}

// --- decoding requests ---

func cwDecodeCBOR(body []byte) (in cwParams, err error) {
	if len(body) == 0 {
		return newCWParams(map[string]any{}, false), nil
	}
	defer func() {
		// The codec is meant for the SDK's own responses; never let a
		// hostile body take the server down through it.
		if v := recover(); v != nil {
			err = cwErrValidation("The request body is not valid CBOR.")
		}
	}()
	v, err := cbor.Decode(body)
	if err != nil {
		return cwParams{}, cwErrValidation("The request body is not valid CBOR: %v.", err)
	}
	tree, err := cwFromCBOR(v)
	if err != nil {
		return cwParams{}, err
	}
	switch m := tree.(type) {
	case map[string]any:
		return newCWParams(m, false), nil
	case nil:
		return newCWParams(map[string]any{}, false), nil
	}
	return cwParams{}, cwErrValidation("The request body must be a CBOR map of the operation's members, not %s.", cwDescribe(tree))
}

func cwFromCBOR(v cbor.Value) (any, error) {
	switch v := v.(type) {
	case cbor.Map:
		m := make(map[string]any, len(v))
		for k, e := range v {
			x, err := cwFromCBOR(e)
			if err != nil {
				return nil, err
			}
			m[k] = x
		}
		return m, nil
	case cbor.List:
		l := make([]any, len(v))
		for i, e := range v {
			x, err := cwFromCBOR(e)
			if err != nil {
				return nil, err
			}
			l[i] = x
		}
		return l, nil
	case cbor.String:
		return string(v), nil
	case cbor.Bool:
		return bool(v), nil
	case *cbor.Nil, *cbor.Undefined, nil:
		return nil, nil
	case cbor.Slice:
		return []byte(v), nil
	case *cbor.Tag:
		if v.ID != 1 {
			return nil, cwErrValidation("The request body has CBOR tag %d; only tag 1 (epoch timestamps) is used by CloudWatch.", v.ID)
		}
		f, ok := cwCBORNumber(v.Value)
		if !ok {
			return nil, cwErrValidation("The request body has a timestamp (CBOR tag 1) that is not a number.")
		}
		t, ok := cwEpochTime(f)
		if !ok {
			return nil, cwErrValidation("The request body has a timestamp (CBOR tag 1) out of range: %v.", f)
		}
		return t, nil
	}
	return v, nil // numbers stay CBOR numbers
}

func cwDecodeJSON(body []byte) (cwParams, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return newCWParams(map[string]any{}, false), nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return cwParams{}, cwErrValidation("The request body is not valid JSON: %v.", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return cwParams{}, cwErrValidation("The request body has data after its JSON value.")
	}
	switch m := v.(type) {
	case map[string]any:
		return newCWParams(m, false), nil
	case nil:
		return newCWParams(map[string]any{}, false), nil
	}
	return cwParams{}, cwErrValidation("The request body must be a JSON object of the operation's members, not %s.", cwDescribe(v))
}

// Limits on awsQuery parameter names, so that a hostile form cannot build
// an absurdly deep tree.
const (
	cwMaxQueryDepth = 16
	cwMaxListIndex  = 100000
)

// cwDecodeQuery reads an awsQuery request: Action, Version, and members
// flattened into names such as Dimensions.member.1.Name, from the URL query
// and (for POST) the form body.
func cwDecodeQuery(rawQuery string, body []byte, post bool) (op string, in cwParams, err error) {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", cwParams{}, cwErrValidation("The URL query is not valid: %v.", err)
	}
	if post && len(body) > 0 {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return vals.Get("Action"), cwParams{}, cwErrValidation("The request body is not a valid form: %v.", err)
		}
		for k, v := range form {
			vals[k] = append(vals[k], v...)
		}
	}
	op = vals.Get("Action")
	root := &cwQNode{}
	for k, vs := range vals {
		if k == "Action" || k == "Version" || strings.HasPrefix(k, "X-Amz-") {
			continue
		}
		if err := root.set(k, vs[0]); err != nil {
			return op, cwParams{}, err
		}
	}
	m, err := root.tree("")
	if err != nil {
		return op, cwParams{}, err
	}
	tm, ok := m.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	return op, newCWParams(tm, true), nil
}

// cwQNode is a node of the awsQuery parameter tree under construction.
type cwQNode struct {
	value   *string
	fields  map[string]*cwQNode
	members map[int]*cwQNode
}

func (n *cwQNode) set(key, value string) error {
	parts := strings.Split(key, ".")
	if len(parts) > cwMaxQueryDepth {
		return cwErrValidation("Parameter %q is nested deeper than %d levels.", key, cwMaxQueryDepth)
	}
	for i := 0; i < len(parts); i++ {
		part := parts[i]
		if part == "" {
			return cwErrValidation("Parameter %q has an empty name segment.", key)
		}
		if part == "member" && i+1 < len(parts) {
			idx, err := strconv.Atoi(parts[i+1])
			if err != nil || idx < 1 || idx > cwMaxListIndex {
				return cwErrValidation("Parameter %q: a list index must be a number from 1 to %d.", key, cwMaxListIndex)
			}
			if n.members == nil {
				n.members = map[int]*cwQNode{}
			}
			c := n.members[idx]
			if c == nil {
				c = &cwQNode{}
				n.members[idx] = c
			}
			n = c
			i++
			continue
		}
		if n.fields == nil {
			n.fields = map[string]*cwQNode{}
		}
		c := n.fields[part]
		if c == nil {
			c = &cwQNode{}
			n.fields[part] = c
		}
		n = c
	}
	v := value
	n.value = &v
	return nil
}

func (n *cwQNode) tree(path string) (any, error) {
	// A value beside members is allowed only when empty: botocore sends
	// "AlarmNames=" for an empty list.
	if n.fields != nil && n.members != nil || (n.fields != nil || n.members != nil) && n.value != nil && *n.value != "" {
		return nil, cwErrValidation("Parameter %q is given both as a value and as a structure or list.", path)
	}
	switch {
	case n.members != nil:
		idx := make([]int, 0, len(n.members))
		for i := range n.members {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		l := make([]any, len(idx))
		for j, i := range idx {
			v, err := n.members[i].tree(fmt.Sprintf("%s.member.%d", path, i))
			if err != nil {
				return nil, err
			}
			l[j] = v
		}
		return l, nil
	case n.fields != nil:
		m := make(map[string]any, len(n.fields))
		for k, c := range n.fields {
			p := k
			if path != "" {
				p = path + "." + k
			}
			v, err := c.tree(p)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case n.value != nil:
		return *n.value, nil
	}
	return map[string]any{}, nil
}

// --- encoding results ---

// cwObj is a structure of a result, its members in order (the XML encoding
// keeps it).
type cwObj []cwKV

type cwKV struct {
	k string
	v any
}

// cwMap is a map member (string to value), such as ExtendedStatistics.
type cwMap []cwKV

func (o *cwObj) add(k string, v any) { *o = append(*o, cwKV{k, v}) }

// addStr adds a string member unless it is empty.
func (o *cwObj) addStr(k, v string) {
	if v != "" {
		o.add(k, v)
	}
}

// addTime adds a timestamp member unless it is zero.
func (o *cwObj) addTime(k string, t time.Time) {
	if !t.IsZero() {
		o.add(k, t)
	}
}

func cwToCBOR(v any) cbor.Value {
	switch v := v.(type) {
	case cwObj:
		m := make(cbor.Map, len(v))
		for _, e := range v {
			m[e.k] = cwToCBOR(e.v)
		}
		return m
	case cwMap:
		m := make(cbor.Map, len(v))
		for _, e := range v {
			m[e.k] = cwToCBOR(e.v)
		}
		return m
	case []any:
		l := make(cbor.List, len(v))
		for i, e := range v {
			l[i] = cwToCBOR(e)
		}
		return l
	case string:
		return cbor.String(v)
	case int:
		if v < 0 {
			return cbor.NegInt(-int64(v))
		}
		return cbor.Uint(v)
	case float64:
		return cbor.Float64(v)
	case bool:
		return cbor.Bool(v)
	case time.Time:
		return &cbor.Tag{ID: 1, Value: cbor.Float64(float64(v.UnixMilli()) / 1e3)}
	}
	return &cbor.Nil{}
}

func cwEncodeCBOR(o cwObj) []byte {
	if o == nil {
		o = cwObj{}
	}
	return cbor.Encode(cwToCBOR(o))
}

func cwToJSON(v any) any {
	switch v := v.(type) {
	case cwObj:
		m := make(map[string]any, len(v))
		for _, e := range v {
			m[e.k] = cwToJSON(e.v)
		}
		return m
	case cwMap:
		m := make(map[string]any, len(v))
		for _, e := range v {
			m[e.k] = cwToJSON(e.v)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = cwToJSON(e)
		}
		return l
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return cwFormatFloat(v)
		}
		return v
	case time.Time:
		return json.Number(strconv.FormatFloat(float64(v.UnixMilli())/1e3, 'f', -1, 64))
	}
	return v
}

func cwEncodeJSON(o cwObj) []byte {
	if o == nil {
		o = cwObj{}
	}
	b, err := json.Marshal(cwToJSON(o))
	if err != nil {
		// Every leaf is a string, number, boolean or timestamp, which
		// always marshal.
		return []byte(`{"__type":"InternalServiceFault","message":"encoding the response failed"}`)
	}
	return b
}

// cwFormatFloat writes a double as Smithy's text encodings do.
func cwFormatFloat(f float64) string {
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

func cwWriteXML(b *bytes.Buffer, name string, v any) {
	b.WriteString("<" + name + ">")
	switch v := v.(type) {
	case cwObj:
		for _, e := range v {
			cwWriteXML(b, e.k, e.v)
		}
	case cwMap:
		for _, e := range v {
			b.WriteString("<entry>")
			cwWriteXML(b, "key", e.k)
			cwWriteXML(b, "value", e.v)
			b.WriteString("</entry>")
		}
	case []any:
		for _, e := range v {
			cwWriteXML(b, "member", e)
		}
	case string:
		xml.EscapeText(b, []byte(v))
	case int:
		b.WriteString(strconv.Itoa(v))
	case float64:
		b.WriteString(cwFormatFloat(v))
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case time.Time:
		b.WriteString(v.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	b.WriteString("</" + name + ">")
}

func cwEncodeQueryResult(op, reqID string, out cwObj) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<" + op + "Response xmlns=\"" + cwXMLNS + "\">")
	if out != nil {
		cwWriteXML(&b, op+"Result", out)
	}
	cwWriteXML(&b, "ResponseMetadata", cwObj{{"RequestId", reqID}})
	b.WriteString("</" + op + "Response>")
	return b.Bytes()
}

func cwEncodeQueryError(reqID string, e *cwError) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<ErrorResponse xmlns=\"" + cwXMLNS + "\">")
	cwWriteXML(&b, "Error", cwObj{{"Type", e.fault()}, {"Code", e.code}, {"Message", e.msg}})
	cwWriteXML(&b, "RequestId", reqID)
	b.WriteString("</ErrorResponse>")
	return b.Bytes()
}
