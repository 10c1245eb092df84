package kiln

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// PutMetricData's limits, CloudWatch's.
const (
	MaxMetricData       = 1000
	MaxMetricValues     = 150
	MaxMetricDimensions = 30
	// Metric values are 0 or of a magnitude between these.
	minMetricMagnitude = 8.515920e-109
	maxMetricMagnitude = 1.174271e+108
	// Timestamps may lie this far in the past or the future.
	maxMetricAge    = 14 * 24 * time.Hour
	maxMetricFuture = 2 * time.Hour
)

// MetricDatum is one data point published with PutMetricData: one of
// Value, StatisticValues, or Values (with Counts, each 1 if absent).
type MetricDatum struct {
	MetricName      string        `json:"MetricName"`
	Dimensions      []Dimension   `json:"Dimensions,omitempty"`
	Timestamp       time.Time     `json:"Timestamp,omitzero"`
	Value           *float64      `json:"Value,omitempty"`
	StatisticValues *StatisticSet `json:"StatisticValues,omitempty"`
	Values          []float64     `json:"Values,omitempty"`
	Counts          []float64     `json:"Counts,omitempty"`
	Unit            string        `json:"Unit,omitempty"`
}

// StatisticSet is a data point already aggregated by its publisher.
type StatisticSet struct {
	SampleCount float64 `json:"SampleCount"`
	Sum         float64 `json:"Sum"`
	Minimum     float64 `json:"Minimum"`
	Maximum     float64 `json:"Maximum"`
}

// Stats returns the datum as a sample count, sum, minimum and maximum.
// Call it on a datum ValidateMetricData accepted.
func (d *MetricDatum) Stats() (n, sum, lo, hi float64) {
	switch {
	case d.Value != nil:
		v := *d.Value
		return 1, v, v, v
	case d.StatisticValues != nil:
		s := d.StatisticValues
		return s.SampleCount, s.Sum, s.Minimum, s.Maximum
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	for i, v := range d.Values {
		c := 1.0
		if len(d.Counts) > 0 {
			c = d.Counts[i]
		}
		n += c
		sum += v * c
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return n, sum, lo, hi
}

// ValidateMetricData checks a PutMetricData request as CloudWatch does,
// at time now, and names the first thing wrong.
func ValidateMetricData(namespace string, data []MetricDatum, now time.Time) error {
	switch {
	case namespace == "":
		return Errorf(EINVALID, "Namespace is required.")
	case len(namespace) > 255:
		return Errorf(EINVALID, "Namespace must be at most 255 characters.")
	case strings.HasPrefix(namespace, "AWS/"):
		return Errorf(EINVALID, "Namespace %q: namespaces beginning with AWS/ are reserved; Kiln publishes AWS/SageMaker's metrics itself.", namespace)
	case len(data) == 0:
		return Errorf(EINVALID, "MetricData is required: give at least one data point.")
	case len(data) > MaxMetricData:
		return Errorf(EINVALID, "MetricData has %d data points; at most %d are allowed.", len(data), MaxMetricData)
	}
	for i := range data {
		if err := data[i].validate(now); err != nil {
			return Errorf(EINVALID, "MetricData[%d]: %s", i, ErrorMessage(err))
		}
	}
	return nil
}

func (d *MetricDatum) validate(now time.Time) error {
	if d.MetricName == "" || len(d.MetricName) > 255 {
		return Errorf(EINVALID, "MetricName must be 1 to 255 characters.")
	}
	if len(d.Dimensions) > MaxMetricDimensions {
		return Errorf(EINVALID, "Dimensions has %d entries; at most %d are allowed.", len(d.Dimensions), MaxMetricDimensions)
	}
	seen := map[string]bool{}
	for i, dim := range d.Dimensions {
		switch {
		case dim.Name == "" || len(dim.Name) > 255:
			return Errorf(EINVALID, "Dimensions[%d].Name must be 1 to 255 characters.", i)
		case dim.Value == "" || len(dim.Value) > 1024:
			return Errorf(EINVALID, "Dimensions[%d].Value must be 1 to 1024 characters.", i)
		case seen[dim.Name]:
			return Errorf(EINVALID, "Dimensions[%d].Name %q is given twice.", i, dim.Name)
		}
		seen[dim.Name] = true
	}
	if !d.Timestamp.IsZero() {
		if age := now.Sub(d.Timestamp); age > maxMetricAge || -age > maxMetricFuture {
			return Errorf(EINVALID, "Timestamp %s is more than two weeks in the past or two hours in the future.", d.Timestamp.UTC().Format(time.RFC3339))
		}
	}
	given := 0
	for _, b := range []bool{d.Value != nil, d.StatisticValues != nil, len(d.Values) > 0} {
		if b {
			given++
		}
	}
	if given != 1 {
		return Errorf(EINVALID, "give exactly one of Value, StatisticValues and Values.")
	}
	switch {
	case d.Value != nil:
		return checkMetricValue("Value", *d.Value)
	case d.StatisticValues != nil:
		s := d.StatisticValues
		for _, f := range []struct {
			name string
			v    float64
		}{{"SampleCount", s.SampleCount}, {"Sum", s.Sum}, {"Minimum", s.Minimum}, {"Maximum", s.Maximum}} {
			if err := checkMetricValue("StatisticValues."+f.name, f.v); err != nil {
				return err
			}
		}
		if s.SampleCount <= 0 {
			return Errorf(EINVALID, "StatisticValues.SampleCount must be more than 0.")
		}
		if s.Minimum > s.Maximum {
			return Errorf(EINVALID, "StatisticValues.Minimum (%g) is more than Maximum (%g).", s.Minimum, s.Maximum)
		}
		return nil
	}
	if len(d.Values) > MaxMetricValues {
		return Errorf(EINVALID, "Values has %d entries; at most %d are allowed.", len(d.Values), MaxMetricValues)
	}
	if len(d.Counts) > 0 && len(d.Counts) != len(d.Values) {
		return Errorf(EINVALID, "Counts has %d entries and Values %d; give one count per value, or none.", len(d.Counts), len(d.Values))
	}
	for i, v := range d.Values {
		if err := checkMetricValue(fmt.Sprintf("Values[%d]", i), v); err != nil {
			return err
		}
	}
	for i, c := range d.Counts {
		if err := checkMetricValue(fmt.Sprintf("Counts[%d]", i), c); err != nil {
			return err
		}
		if c <= 0 {
			return Errorf(EINVALID, "Counts[%d] must be more than 0.", i)
		}
	}
	return nil
}

func checkMetricValue(name string, v float64) error {
	if a := math.Abs(v); math.IsNaN(v) || v != 0 && (a < minMetricMagnitude || a > maxMetricMagnitude) {
		return Errorf(EINVALID, "%s %g is not a number CloudWatch accepts (0, or of magnitude %g to %g).", name, v, minMetricMagnitude, maxMetricMagnitude)
	}
	return nil
}
