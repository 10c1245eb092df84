package cloudwatch

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"time"
)

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
