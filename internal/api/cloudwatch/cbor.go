package cloudwatch

import (
	"math"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

func cborFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case cbor.Float32:
		return float64(v), true
	case cbor.Float64:
		return float64(v), true
	}
	return 0, false
}

// cborNumber returns any CBOR number as a float64. NegInt(0) stands for
// -2^64 (CBOR's negative integers are -1 minus their argument).
func cborNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case cbor.Uint:
		return float64(v), true
	case cbor.NegInt:
		if v == 0 {
			return -math.Exp2(64), true
		}
		return -float64(v), true
	}
	return cborFloat(v)
}

func decodeCBOR(body []byte) (in params, err error) {
	if len(body) == 0 {
		return newParams(map[string]any{}, false), nil
	}
	defer func() {
		// The codec is meant for the SDK's own responses; never let a
		// hostile body take the server down through it.
		if v := recover(); v != nil {
			err = errValidation("The request body is not valid CBOR.")
		}
	}()
	v, err := cbor.Decode(body)
	if err != nil {
		return params{}, errValidation("The request body is not valid CBOR: %v.", err)
	}
	tree, err := fromCBOR(v)
	if err != nil {
		return params{}, err
	}
	switch m := tree.(type) {
	case map[string]any:
		return newParams(m, false), nil
	case nil:
		return newParams(map[string]any{}, false), nil
	}
	return params{}, errValidation("The request body must be a CBOR map of the operation's members, not %s.", describe(tree))
}

func fromCBOR(v cbor.Value) (any, error) {
	switch v := v.(type) {
	case cbor.Map:
		m := make(map[string]any, len(v))
		for k, e := range v {
			x, err := fromCBOR(e)
			if err != nil {
				return nil, err
			}
			m[k] = x
		}
		return m, nil
	case cbor.List:
		l := make([]any, len(v))
		for i, e := range v {
			x, err := fromCBOR(e)
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
			return nil, errValidation("The request body has CBOR tag %d; only tag 1 (epoch timestamps) is used by CloudWatch.", v.ID)
		}
		f, ok := cborNumber(v.Value)
		if !ok {
			return nil, errValidation("The request body has a timestamp (CBOR tag 1) that is not a number.")
		}
		t, ok := epochTime(f)
		if !ok {
			return nil, errValidation("The request body has a timestamp (CBOR tag 1) out of range: %v.", f)
		}
		return t, nil
	}
	return v, nil // numbers stay CBOR numbers
}

func toCBOR(v any) cbor.Value {
	switch v := v.(type) {
	case obj:
		m := make(cbor.Map, len(v))
		for _, e := range v {
			m[e.k] = toCBOR(e.v)
		}
		return m
	case mapMember:
		m := make(cbor.Map, len(v))
		for _, e := range v {
			m[e.k] = toCBOR(e.v)
		}
		return m
	case []any:
		l := make(cbor.List, len(v))
		for i, e := range v {
			l[i] = toCBOR(e)
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

func encodeCBOR(o obj) []byte {
	if o == nil {
		o = obj{}
	}
	return cbor.Encode(toCBOR(o))
}
