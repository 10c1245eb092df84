package cloudwatch

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on awsQuery parameter names, so that a hostile form cannot build
// an absurdly deep tree.
const (
	maxQueryDepth = 16
	maxListIndex  = 100000
)

// decodeQuery reads an awsQuery request: Action, Version, and members
// flattened into names such as Dimensions.member.1.Name, from the URL query
// and (for POST) the form body.
func decodeQuery(rawQuery string, body []byte, post bool) (op string, in params, err error) {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", params{}, errValidation("The URL query is not valid: %v.", err)
	}
	if post && len(body) > 0 {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return vals.Get("Action"), params{}, errValidation("The request body is not a valid form: %v.", err)
		}
		for k, v := range form {
			vals[k] = append(vals[k], v...)
		}
	}
	op = vals.Get("Action")
	root := &queryNode{}
	for k, vs := range vals {
		if k == "Action" || k == "Version" || strings.HasPrefix(k, "X-Amz-") {
			continue
		}
		if err := root.set(k, vs[0]); err != nil {
			return op, params{}, err
		}
	}
	m, err := root.tree("")
	if err != nil {
		return op, params{}, err
	}
	tm, ok := m.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	return op, newParams(tm, true), nil
}

// queryNode is a node of the awsQuery parameter tree under construction.
type queryNode struct {
	value   *string
	fields  map[string]*queryNode
	members map[int]*queryNode
}

func (n *queryNode) set(key, value string) error {
	parts := strings.Split(key, ".")
	if len(parts) > maxQueryDepth {
		return errValidation("Parameter %q is nested deeper than %d levels.", key, maxQueryDepth)
	}
	for i := 0; i < len(parts); i++ {
		part := parts[i]
		if part == "" {
			return errValidation("Parameter %q has an empty name segment.", key)
		}
		if part == "member" && i+1 < len(parts) {
			idx, err := strconv.Atoi(parts[i+1])
			if err != nil || idx < 1 || idx > maxListIndex {
				return errValidation("Parameter %q: a list index must be a number from 1 to %d.", key, maxListIndex)
			}
			if n.members == nil {
				n.members = map[int]*queryNode{}
			}
			c := n.members[idx]
			if c == nil {
				c = &queryNode{}
				n.members[idx] = c
			}
			n = c
			i++
			continue
		}
		if n.fields == nil {
			n.fields = map[string]*queryNode{}
		}
		c := n.fields[part]
		if c == nil {
			c = &queryNode{}
			n.fields[part] = c
		}
		n = c
	}
	v := value
	n.value = &v
	return nil
}

func (n *queryNode) tree(path string) (any, error) {
	// A value beside members is allowed only when empty: botocore sends
	// "AlarmNames=" for an empty list.
	if n.fields != nil && n.members != nil || (n.fields != nil || n.members != nil) && n.value != nil && *n.value != "" {
		return nil, errValidation("Parameter %q is given both as a value and as a structure or list.", path)
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

func writeXML(b *bytes.Buffer, name string, v any) {
	b.WriteString("<" + name + ">")
	switch v := v.(type) {
	case obj:
		for _, e := range v {
			writeXML(b, e.k, e.v)
		}
	case mapMember:
		for _, e := range v {
			b.WriteString("<entry>")
			writeXML(b, "key", e.k)
			writeXML(b, "value", e.v)
			b.WriteString("</entry>")
		}
	case []any:
		for _, e := range v {
			writeXML(b, "member", e)
		}
	case string:
		xml.EscapeText(b, []byte(v))
	case int:
		b.WriteString(strconv.Itoa(v))
	case float64:
		b.WriteString(formatFloat(v))
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case time.Time:
		b.WriteString(v.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	b.WriteString("</" + name + ">")
}

func encodeQueryResult(op, reqID string, out obj) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<" + op + "Response xmlns=\"" + xmlns + "\">")
	if out != nil {
		writeXML(&b, op+"Result", out)
	}
	writeXML(&b, "ResponseMetadata", obj{{"RequestId", reqID}})
	b.WriteString("</" + op + "Response>")
	return b.Bytes()
}

func encodeQueryError(reqID string, e *apiError) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<ErrorResponse xmlns=\"" + xmlns + "\">")
	writeXML(&b, "Error", obj{{"Type", e.fault()}, {"Code", e.code}, {"Message", e.msg}})
	writeXML(&b, "RequestId", reqID)
	b.WriteString("</ErrorResponse>")
	return b.Bytes()
}
