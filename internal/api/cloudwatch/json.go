package cloudwatch

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"time"
)

func decodeJSON(body []byte) (params, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return newParams(map[string]any{}, false), nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return params{}, errValidation("The request body is not valid JSON: %v.", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return params{}, errValidation("The request body has data after its JSON value.")
	}
	switch m := v.(type) {
	case map[string]any:
		return newParams(m, false), nil
	case nil:
		return newParams(map[string]any{}, false), nil
	}
	return params{}, errValidation("The request body must be a JSON object of the operation's members, not %s.", describe(v))
}

func toJSON(v any) any {
	switch v := v.(type) {
	case obj:
		m := make(map[string]any, len(v))
		for _, e := range v {
			m[e.k] = toJSON(e.v)
		}
		return m
	case mapMember:
		m := make(map[string]any, len(v))
		for _, e := range v {
			m[e.k] = toJSON(e.v)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = toJSON(e)
		}
		return l
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return formatFloat(v)
		}
		return v
	case time.Time:
		return json.Number(strconv.FormatFloat(float64(v.UnixMilli())/1e3, 'f', -1, 64))
	}
	return v
}

func encodeJSON(o obj) []byte {
	if o == nil {
		o = obj{}
	}
	b, err := json.Marshal(toJSON(o))
	if err != nil {
		// Every leaf is a string, number, boolean or timestamp, which
		// always marshal.
		return []byte(`{"__type":"InternalServiceFault","message":"encoding the response failed"}`)
	}
	return b
}
