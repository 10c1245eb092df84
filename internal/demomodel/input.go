package demomodel

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"strconv"
	"strings"
)

// inputError is a request the model cannot read; kind goes into the "error"
// field of the 400 answer.
type inputError struct {
	kind string
	msg  string
}

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{kind: "invalid_input", msg: fmt.Sprintf(format, args...)}
}

// parseRows decodes a request body into rows of exactly features values.
func parseRows(contentType string, body []byte, features int) ([][]float64, error) {
	var (
		rows [][]float64
		err  error
	)
	mediaType := "application/json"
	if strings.TrimSpace(contentType) != "" {
		mediaType, _, err = mime.ParseMediaType(contentType)
		if err != nil {
			return nil, &inputError{kind: "unsupported_content_type", msg: fmt.Sprintf("cannot parse Content-Type %q: %v", contentType, err)}
		}
	}
	switch mediaType {
	case "application/json":
		rows, err = parseJSONRows(body)
	case "text/csv":
		rows, err = parseCSVRows(body)
	default:
		return nil, &inputError{kind: "unsupported_content_type", msg: fmt.Sprintf("unsupported Content-Type %q; send application/json or text/csv", mediaType)}
	}
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, badInput("the request holds no rows to score")
	}
	for i, r := range rows {
		if len(r) != features {
			return nil, badInput("row %d has %d features; the model expects %d", i+1, len(r), features)
		}
	}
	return rows, nil
}

// parseJSONRows accepts {"instances": [[...], ...]}, [[...], ...] or a single
// row [...]. Numbers are decoded by hand from json.Number because decoding
// into []float64 would silently turn null into 0.
func parseJSONRows(body []byte) ([][]float64, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, badInput("the request body is empty")
		}
		return nil, badInput("bad JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badInput("bad JSON: unexpected data after the first JSON value")
	}
	switch v := v.(type) {
	case map[string]any:
		inst, ok := v["instances"]
		if !ok {
			return nil, badInput(`JSON object has no "instances" field`)
		}
		list, ok := inst.([]any)
		if !ok {
			return nil, badInput(`"instances" must be a list of rows`)
		}
		return jsonRows(list, `"instances"`)
	case []any:
		if len(v) > 0 {
			if _, nested := v[0].([]any); !nested {
				row, err := jsonRow(v, 1)
				if err != nil {
					return nil, err
				}
				return [][]float64{row}, nil
			}
		}
		return jsonRows(v, "the body")
	default:
		return nil, badInput(`JSON body must be {"instances": [[...]]}, a list of rows, or one row`)
	}
}

func jsonRows(list []any, what string) ([][]float64, error) {
	rows := make([][]float64, 0, len(list))
	for i, item := range list {
		r, ok := item.([]any)
		if !ok {
			return nil, badInput("item %d of %s is not a list of features", i+1, what)
		}
		row, err := jsonRow(r, i+1)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func jsonRow(r []any, n int) ([]float64, error) {
	row := make([]float64, len(r))
	for j, x := range r {
		num, ok := x.(json.Number)
		if !ok {
			return nil, badInput("row %d, feature %d: %s is not a number", n, j+1, jsonKind(x))
		}
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, badInput("row %d, feature %d: %s is not a finite number", n, j+1, num)
		}
		row[j] = f
	}
	return row, nil
}

func jsonKind(x any) string {
	switch x := x.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%v", x)
	}
}

// parseCSVRows reads one row per record; blank lines are skipped.
func parseCSVRows(body []byte) ([][]float64, error) {
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1 // the feature count is checked with a clearer message
	r.TrimLeadingSpace = true
	records, err := r.ReadAll()
	if err != nil {
		return nil, badInput("bad CSV: %v", err)
	}
	rows := make([][]float64, 0, len(records))
	for i, rec := range records {
		row := make([]float64, len(rec))
		for j, field := range rec {
			s := strings.TrimSpace(field)
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, badInput("row %d, column %d: %q is not a finite number", i+1, j+1, s)
			}
			row[j] = f
		}
		rows = append(rows, row)
	}
	return rows, nil
}
