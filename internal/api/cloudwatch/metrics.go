package cloudwatch

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/kiln-serve/kiln"
)

func dimensionList(dims []kiln.Dimension) []any {
	l := make([]any, len(dims))
	for i, d := range dims {
		l[i] = obj{{"Name", d.Name}, {"Value", d.Value}}
	}
	return l
}

// metricSpec is a metric and a period of it, as GetMetricStatistics and
// GetMetricData's MetricStat name them.
type metricSpec struct {
	namespace, metricName string
	dims                  []kiln.Dimension
	period                int
	unit                  string
}

func readMetricSpec(m params, periodMember string, period int, hasPeriod bool, unit string) (metricSpec, error) {
	s := metricSpec{
		namespace:  m.str("Namespace"),
		metricName: m.str("MetricName"),
		dims:       readDimensions(m, "Dimensions", true),
		period:     period,
		unit:       unit,
	}
	if err := m.err(); err != nil {
		return s, err
	}
	switch {
	case s.namespace == "":
		return s, errValidation("%s is required.", m.name("Namespace"))
	case s.metricName == "":
		return s, errValidation("%s is required.", m.name("MetricName"))
	case len(s.dims) > maxDimensions:
		return s, errValidation("%s has %d entries; at most %d are allowed.", m.name("Dimensions"), len(s.dims), maxDimensions)
	case !hasPeriod:
		return s, errValidation("%s is required.", periodMember)
	case unit != "" && !isStandardUnit(unit):
		return s, errValidation("Unit %q is not one of CloudWatch's standard units.", unit)
	}
	return s, nil
}

// query asks the service for one statistic of the metric. Kiln records each
// metric in one unit, so asking for another unit finds no data, as in
// CloudWatch.
func (c *API) query(ctx context.Context, s metricSpec, stat string, start, end time.Time) ([]kiln.Datapoint, error) {
	if s.unit != "" && s.unit != metricUnit(s.metricName) {
		return nil, nil
	}
	return c.Service.GetMetricStatistics(ctx, kiln.MetricQuery{
		Namespace: s.namespace, MetricName: s.metricName, Dimensions: s.dims,
		Statistic: stat, Period: s.period, StartTime: start, EndTime: end,
	})
}

func (c *API) getMetricStatistics(ctx context.Context, in params) (obj, error) {
	period, hasPeriod := in.int("Period")
	start, hasStart := in.time("StartTime")
	end, hasEnd := in.time("EndTime")
	stats := in.strs("Statistics")
	ext := in.strs("ExtendedStatistics")
	spec, err := readMetricSpec(in, "Period", period, hasPeriod, in.str("Unit"))
	if err != nil {
		return nil, err
	}
	switch {
	case !hasStart:
		return nil, errValidation("StartTime is required.")
	case !hasEnd:
		return nil, errValidation("EndTime is required.")
	case !start.Before(end):
		return nil, errInvalidValue("The parameter StartTime must be less than the parameter EndTime.")
	case len(stats) == 0 && len(ext) == 0:
		return nil, errMissing("Specify Statistics or ExtendedStatistics.")
	case len(stats) > 0 && len(ext) > 0:
		return nil, errCombination("Specify Statistics or ExtendedStatistics, not both.")
	case len(stats) > maxStatistics:
		return nil, errValidation("Statistics has %d entries; at most %d are allowed.", len(stats), maxStatistics)
	case len(ext) > maxExtendedStats:
		return nil, errValidation("ExtendedStatistics has %d entries; at most %d are allowed.", len(ext), maxExtendedStats)
	}
	for i, s := range stats {
		if !kiln.ValidStatistic(s) {
			return nil, errValidation("Statistics[%d] %q is not one of SampleCount, Average, Sum, Minimum, Maximum.", i, s)
		}
	}
	for i, s := range ext {
		if _, ok := kiln.ParsePercentile(s); !ok {
			return nil, errInvalidValue("ExtendedStatistics[%d] %q is not a percentile such as p99 or p99.9 (the only extended statistics Kiln computes).", i, s)
		}
	}

	type point struct {
		t    time.Time
		vals obj
		ext  mapMember
	}
	byTime := map[int64]*point{}
	for _, stat := range append(slices.Clone(stats), ext...) {
		dps, err := c.query(ctx, spec, stat, start, end)
		if err != nil {
			return nil, err
		}
		for _, dp := range dps {
			k := dp.Timestamp.UnixNano()
			p := byTime[k]
			if p == nil {
				p = &point{t: dp.Timestamp}
				byTime[k] = p
			}
			if kiln.ValidStatistic(stat) {
				p.vals.add(stat, dp.Value)
			} else {
				p.ext = append(p.ext, kv{stat, dp.Value})
			}
		}
	}
	points := make([]*point, 0, len(byTime))
	for _, p := range byTime {
		points = append(points, p)
	}
	slices.SortFunc(points, func(a, b *point) int { return a.t.Compare(b.t) })
	unit := metricUnit(spec.metricName)
	l := make([]any, len(points))
	for i, p := range points {
		o := obj{{"Timestamp", p.t}}
		o = append(o, p.vals...)
		if len(p.ext) > 0 {
			o.add("ExtendedStatistics", p.ext)
		}
		o.add("Unit", unit)
		l[i] = o
	}
	return obj{{"Label", spec.metricName}, {"Datapoints", l}}, nil
}

var metricQueryIDRE = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

func (c *API) getMetricData(ctx context.Context, in params) (obj, error) {
	start, hasStart := in.time("StartTime")
	end, hasEnd := in.time("EndTime")
	scanBy := in.str("ScanBy")
	queries := in.structs("MetricDataQueries")
	in.int("MaxDatapoints")
	in.str("NextToken")
	if err := in.err(); err != nil {
		return nil, err
	}
	switch {
	case !hasStart:
		return nil, errValidation("StartTime is required.")
	case !hasEnd:
		return nil, errValidation("EndTime is required.")
	case !start.Before(end):
		return nil, errValidation("The parameter StartTime must be less than the parameter EndTime.")
	case len(queries) == 0:
		return nil, errValidation("MetricDataQueries is required: give at least one query.")
	case len(queries) > maxMetricQueries:
		return nil, errValidation("MetricDataQueries has %d entries; at most %d are allowed.", len(queries), maxMetricQueries)
	}
	if err := checkEnum("ScanBy", scanBy, "TimestampDescending", "TimestampAscending"); err != nil {
		return nil, err
	}

	type plan struct {
		id, label, stat string
		spec            metricSpec
		ret             bool
	}
	plans := make([]plan, 0, len(queries))
	seen := map[string]bool{}
	for _, q := range queries {
		p := plan{id: q.str("Id"), label: q.str("Label"), ret: true}
		if b := q.bool("ReturnData"); b != nil {
			p.ret = *b
		}
		if err := q.err(); err != nil {
			return nil, err
		}
		switch {
		case p.id == "":
			return nil, errValidation("%s is required.", q.name("Id"))
		case !metricQueryIDRE.MatchString(p.id) || len(p.id) > 255:
			return nil, errValidation("%s %q must start with a lower-case letter and hold only letters, digits and underscores.", q.name("Id"), p.id)
		case seen[p.id]:
			return nil, errValidation("%s %q is used by more than one query.", q.name("Id"), p.id)
		case q.has("Expression"):
			return nil, errValidation("%s (Id %q): metric math Expression is not supported by Kiln; query each metric with MetricStat.", q.name("Expression"), p.id)
		}
		seen[p.id] = true
		ms, ok := q.sub("MetricStat")
		if err := q.err(); err != nil {
			return nil, err
		}
		if !ok {
			return nil, errValidation("%s is required (Id %q).", q.name("MetricStat"), p.id)
		}
		period, hasPeriod := ms.int("Period")
		p.stat = ms.str("Stat")
		unit := ms.str("Unit")
		m, ok := ms.sub("Metric")
		if err := ms.err(); err != nil {
			return nil, err
		}
		if !ok {
			return nil, errValidation("%s is required.", ms.name("Metric"))
		}
		spec, err := readMetricSpec(m, ms.name("Period"), period, hasPeriod, unit)
		if err != nil {
			return nil, err
		}
		if _, pct := kiln.ParsePercentile(p.stat); !pct && !kiln.ValidStatistic(p.stat) {
			return nil, errValidation("%s %q is not one of SampleCount, Average, Sum, Minimum, Maximum or a percentile such as p99.", ms.name("Stat"), p.stat)
		}
		p.spec = spec
		if p.label == "" {
			p.label = spec.metricName
		}
		plans = append(plans, p)
	}

	asc := scanBy == "TimestampAscending"
	results := []any{}
	for _, p := range plans {
		if !p.ret {
			continue
		}
		dps, err := c.query(ctx, p.spec, p.stat, start, end)
		if err != nil {
			return nil, err
		}
		slices.SortFunc(dps, func(a, b kiln.Datapoint) int {
			if asc {
				return a.Timestamp.Compare(b.Timestamp)
			}
			return b.Timestamp.Compare(a.Timestamp)
		})
		ts := make([]any, len(dps))
		vs := make([]any, len(dps))
		for i, dp := range dps {
			ts[i], vs[i] = dp.Timestamp, dp.Value
		}
		results = append(results, obj{
			{"Id", p.id}, {"Label", p.label}, {"Timestamps", ts}, {"Values", vs},
			{"StatusCode", "Complete"}, {"Messages", []any{}},
		})
	}
	return obj{{"MetricDataResults", results}, {"Messages", []any{}}}, nil
}

func (c *API) listMetrics(ctx context.Context, in params) (obj, error) {
	namespace := in.str("Namespace")
	metricName := in.str("MetricName")
	dims := readDimensions(in, "Dimensions", false)
	token := in.str("NextToken")
	recent := in.str("RecentlyActive")
	in.bool("IncludeLinkedAccounts")
	in.str("OwningAccount")
	if err := in.err(); err != nil {
		return nil, err
	}
	if len(dims) > maxDimensions {
		return nil, errValidation("Dimensions has %d entries; at most %d are allowed.", len(dims), maxDimensions)
	}
	if err := checkEnum("RecentlyActive", recent, "PT3H"); err != nil {
		return nil, err
	}
	page, next, err := offsetPage("metrics", token, listMetricsPage, func() ([]kiln.Metric, error) {
		return c.Service.ListMetrics(ctx, namespace, metricName, dims)
	})
	if err != nil {
		return nil, err
	}
	l := make([]any, len(page))
	for i, m := range page {
		l[i] = obj{{"Namespace", m.Namespace}, {"MetricName", m.MetricName}, {"Dimensions", dimensionList(m.Dimensions)}}
	}
	out := obj{{"Metrics", l}}
	out.addStr("NextToken", next)
	return out, nil
}

// readDimensions reads a list of Dimension (needValue) or DimensionFilter.
func readDimensions(in params, member string, needValue bool) []kiln.Dimension {
	ds := in.structs(member)
	if len(ds) == 0 {
		return nil
	}
	out := make([]kiln.Dimension, 0, len(ds))
	for _, d := range ds {
		dim := kiln.Dimension{Name: d.str("Name"), Value: d.str("Value")}
		switch {
		case dim.Name == "":
			in.fail(errValidation("%s is required.", d.name("Name")))
		case needValue && dim.Value == "":
			in.fail(errValidation("%s is required.", d.name("Value")))
		}
		out = append(out, dim)
	}
	return out
}

// metricUnit is the CloudWatch unit of one of Kiln's metrics: its latencies
// are in microseconds, its counts have none.
func metricUnit(metricName string) string {
	switch metricName {
	case "ModelLatency", "OverheadLatency":
		return "Microseconds"
	}
	return "None"
}

// isStandardUnit reports whether u is one of CloudWatch's StandardUnit values.
func isStandardUnit(u string) bool {
	switch u {
	case "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
		"Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
		"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
		"Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
		"Count/Second", "None":
		return true
	}
	return false
}

func (c *API) putMetricData(ctx context.Context, in params) (obj, error) {
	namespace := in.str("Namespace")
	if in.has("EntityMetricData") {
		return nil, errValidation("EntityMetricData: entities are not supported by Kiln; use MetricData.")
	}
	var data []kiln.MetricDatum
	for _, m := range in.structs("MetricData") {
		d := kiln.MetricDatum{
			MetricName: m.str("MetricName"),
			Dimensions: readDimensions(m, "Dimensions", true),
			Unit:       m.str("Unit"),
			Values:     m.floats("Values"),
			Counts:     m.floats("Counts"),
		}
		if t, ok := m.time("Timestamp"); ok {
			d.Timestamp = t
		}
		if v, ok := m.float("Value"); ok {
			d.Value = &v
		}
		if s, ok := m.sub("StatisticValues"); ok {
			var set kiln.StatisticSet
			set.SampleCount, _ = s.float("SampleCount")
			set.Sum, _ = s.float("Sum")
			set.Minimum, _ = s.float("Minimum")
			set.Maximum, _ = s.float("Maximum")
			d.StatisticValues = &set
		}
		if d.Unit != "" && !isStandardUnit(d.Unit) {
			return nil, errValidation("%s.Unit %q is not one of CloudWatch's standard units.", m.path, d.Unit)
		}
		data = append(data, d)
	}
	if err := in.err(); err != nil {
		return nil, err
	}
	if err := c.Service.PutMetricData(ctx, namespace, data); err != nil {
		if kiln.ErrorCode(err) == kiln.EINVALID {
			// PutMetricData's errors are InvalidParameterValue.
			return nil, &apiError{status: http.StatusBadRequest, code: "InvalidParameterValue", shape: shapeNS + "InvalidParameterValueException", msg: kiln.ErrorMessage(err)}
		}
		return nil, err
	}
	return nil, nil
}
