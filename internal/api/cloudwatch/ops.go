package cloudwatch

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
)

// CloudWatch's limits, from its API model.
const (
	cwMaxAlarmNames    = 100
	cwMaxDimensions    = 30
	cwMaxRecords       = 100
	cwDefaultRecords   = 50
	cwMaxStatistics    = 5
	cwMaxExtendedStats = 10
	cwMaxMetricQueries = 500
	cwListMetricsPage  = 500
)

// cwUnsupported is a member of a request that Kiln does not implement. A
// request using one is refused rather than stored without it.
type cwUnsupported struct{ member, why string }

const (
	cwNoActions     = "alarm actions are not supported by Kiln: its alarms act by rolling back the deployments that watch them"
	cwNoSuppression = "action suppression is not supported by Kiln, whose alarms have no actions"
)

// cwRefuse refuses a request that uses one of the members listed.
func cwRefuse(in cwParams, unsupported []cwUnsupported) error {
	for _, u := range unsupported {
		if in.has(u.member) {
			return cwErrValidation("%s: %s.", u.member, u.why)
		}
	}
	return nil
}

// cwReadTags reads the Tags member.
func cwReadTags(in cwParams) []kiln.Tag {
	var tags []kiln.Tag
	for _, t := range in.structs("Tags") {
		tags = append(tags, kiln.Tag{Key: t.str("Key"), Value: t.str("Value")})
	}
	return tags
}

// The members of PutMetricAlarm that Kiln does not implement.
var cwUnsupportedAlarmMembers = []cwUnsupported{
	{"Metrics", "metric math alarms (Metrics) are not supported by Kiln; alarm on one metric with MetricName, Namespace, Dimensions and Statistic or ExtendedStatistic"},
	{"ThresholdMetricId", "anomaly detection alarms (ThresholdMetricId) are not supported by Kiln; set Threshold"},
	{"AlarmActions", cwNoActions},
	{"OKActions", cwNoActions},
	{"InsufficientDataActions", cwNoActions},
	{"ActionConfiguration", "ActionConfiguration is not supported by Kiln"},
	{"EvaluationCriteria", "EvaluationCriteria (PromQL alarms) is not supported through the CloudWatch API; use Kiln's native API for PromQL alarms"},
	{"EvaluationInterval", "EvaluationInterval is not supported by Kiln"},
	{"EvaluationWindow", "EvaluationWindow is not supported by Kiln"},
	{"WarmUpConfiguration", "WarmUpConfiguration is not supported by Kiln"},
}

func (c *API) putMetricAlarm(ctx context.Context, in cwParams) (cwObj, error) {
	if err := cwRefuse(in, cwUnsupportedAlarmMembers); err != nil {
		return nil, err
	}
	a := kiln.Alarm{
		AlarmName:                        in.str("AlarmName"),
		AlarmDescription:                 in.str("AlarmDescription"),
		ActionsEnabled:                   in.bool("ActionsEnabled"),
		Namespace:                        in.str("Namespace"),
		MetricName:                       in.str("MetricName"),
		Dimensions:                       cwReadDimensions(in, "Dimensions", true),
		Statistic:                        in.str("Statistic"),
		ExtendedStatistic:                in.str("ExtendedStatistic"),
		Unit:                             in.str("Unit"),
		ComparisonOperator:               in.str("ComparisonOperator"),
		TreatMissingData:                 in.str("TreatMissingData"),
		EvaluateLowSampleCountPercentile: in.str("EvaluateLowSampleCountPercentile"),
	}
	a.Period, _ = in.int("Period")
	a.EvaluationPeriods, _ = in.int("EvaluationPeriods")
	dta, hasDTA := in.int("DatapointsToAlarm")
	threshold, hasThreshold := in.float("Threshold")
	a.Threshold = threshold
	a.Tags = cwReadTags(in)
	if err := in.err(); err != nil {
		return nil, err
	}
	switch {
	case a.AlarmName == "":
		return nil, cwErrValidation("AlarmName is required.")
	case !hasThreshold:
		return nil, cwErrValidation("Threshold is required.")
	case a.EvaluationPeriods == 0:
		return nil, cwErrValidation("EvaluationPeriods is required and must be at least 1.")
	case hasDTA && dta < 1:
		return nil, cwErrValidation("DatapointsToAlarm must be at least 1, got %d.", dta)
	case a.Unit != "" && !cwIsStandardUnit(a.Unit):
		return nil, cwErrValidation("Unit %q is not one of CloudWatch's standard units.", a.Unit)
	}
	a.DatapointsToAlarm = dta
	return nil, c.putAlarm(ctx, &a)
}

// putAlarm creates or updates an alarm. CloudWatch ignores the Tags of a
// put that updates an alarm: TagResource and UntagResource change them.
func (c *API) putAlarm(ctx context.Context, a *kiln.Alarm) error {
	if old, err := c.Service.GetAlarm(ctx, a.AlarmName); err == nil {
		if (old.AlarmRule != "") != (a.AlarmRule != "") {
			kind := map[bool]string{false: "a metric alarm", true: "a composite alarm"}
			return cwErrValidation("Alarm %q is %s; it cannot become %s.", a.AlarmName, kind[old.AlarmRule != ""], kind[a.AlarmRule != ""])
		}
		a.Tags = old.Tags
	} else if kiln.ErrorCode(err) != kiln.ENOTFOUND {
		return err
	}
	_, err := c.Service.PutAlarm(ctx, a)
	return err
}

// The members of PutCompositeAlarm that Kiln does not implement.
var cwUnsupportedCompositeMembers = []cwUnsupported{
	{"AlarmActions", cwNoActions},
	{"OKActions", cwNoActions},
	{"InsufficientDataActions", cwNoActions},
	{"ActionsSuppressor", cwNoSuppression},
	{"ActionsSuppressorWaitPeriod", cwNoSuppression},
	{"ActionsSuppressorExtensionPeriod", cwNoSuppression},
}

func (c *API) putCompositeAlarm(ctx context.Context, in cwParams) (cwObj, error) {
	if err := cwRefuse(in, cwUnsupportedCompositeMembers); err != nil {
		return nil, err
	}
	a := kiln.Alarm{
		AlarmName:        in.str("AlarmName"),
		AlarmDescription: in.str("AlarmDescription"),
		AlarmRule:        in.str("AlarmRule"),
		ActionsEnabled:   in.bool("ActionsEnabled"),
		Tags:             cwReadTags(in),
	}
	if err := in.err(); err != nil {
		return nil, err
	}
	switch {
	case a.AlarmName == "":
		return nil, cwErrValidation("AlarmName is required.")
	case a.AlarmRule == "":
		return nil, cwErrValidation("AlarmRule is required.")
	}
	return nil, c.putAlarm(ctx, &a)
}

func (c *API) describeAlarms(ctx context.Context, in cwParams) (cwObj, error) {
	names := in.strs("AlarmNames")
	prefix := in.str("AlarmNamePrefix")
	state := in.str("StateValue")
	types := in.strs("AlarmTypes")
	actionPrefix := in.str("ActionPrefix")
	children := in.str("ChildrenOfAlarmName")
	parents := in.str("ParentsOfAlarmName")
	max, hasMax := in.int("MaxRecords")
	token := in.str("NextToken")
	if err := in.err(); err != nil {
		return nil, err
	}
	switch {
	case len(names) > cwMaxAlarmNames:
		return nil, cwErrValidation("AlarmNames has %d names; at most %d are allowed.", len(names), cwMaxAlarmNames)
	case len(names) > 0 && prefix != "":
		return nil, cwErrCombination("Specify AlarmNames or AlarmNamePrefix, not both.")
	case hasMax && (max < 1 || max > cwMaxRecords):
		return nil, cwErrValidation("MaxRecords must be from 1 to %d, got %d.", cwMaxRecords, max)
	}
	if err := cwCheckEnum("StateValue", state, kiln.StateOK, kiln.StateAlarm, kiln.StateInsufficientData); err != nil {
		return nil, err
	}
	// Without AlarmTypes, CloudWatch describes metric alarms only.
	wantMetric, wantComposite := len(types) == 0, false
	for i, t := range types {
		if err := cwCheckEnum(fmt.Sprintf("AlarmTypes[%d]", i), t, "MetricAlarm", "CompositeAlarm"); err != nil {
			return nil, err
		}
		wantMetric = wantMetric || t == "MetricAlarm"
		wantComposite = wantComposite || t == "CompositeAlarm"
	}
	if !hasMax {
		max = cwDefaultRecords
	}
	after := ""
	if token != "" {
		var ok bool
		if after, ok = cwDecodeToken("alarm", token); !ok {
			return nil, cwErrNextToken(token)
		}
	}

	// The names, in order, narrow the search without reading a record;
	// then records are read a page at a time, and only until the page is
	// full, for the filters that need them (type, state, rule).
	l := api.ListerOf(c.Service)
	entries, err := l.Names(ctx, kiln.KindAlarms)
	if err != nil {
		return nil, err
	}
	var candidates []string
	for _, e := range entries {
		switch {
		case actionPrefix != "", // Kiln's alarms have no actions
			after != "" && e.Name <= after,
			len(names) > 0 && !slices.Contains(names, e.Name),
			prefix != "" && !strings.HasPrefix(e.Name, prefix):
			continue
		}
		candidates = append(candidates, e.Name)
	}
	// The alarms a composite alarm's rule names, and whether a rule names
	// an alarm.
	ruleNames := func(a *kiln.Alarm) []string {
		if r, err := kiln.ParseAlarmRule(a.AlarmRule); err == nil {
			return r.Children()
		}
		return nil
	}
	var childrenOf []string
	if children != "" {
		parent, err := l.AlarmsNamed(ctx, []string{children})
		if err != nil {
			return nil, err
		}
		if len(parent) == 1 && parent[0].AlarmRule != "" {
			childrenOf = ruleNames(&parent[0])
		}
	}
	if (children != "" || parents != "") && len(types) == 0 {
		wantMetric, wantComposite = true, true
	}
	metricAlarms, compositeAlarms := []any{}, []any{}
	next, last, count := "", "", 0
	batch := max + 1 // a page, and the one more that says there is a next page
	for start := 0; start < len(candidates) && next == ""; start += batch {
		alarms, err := l.AlarmsNamed(ctx, candidates[start:min(start+batch, len(candidates))])
		if err != nil {
			return nil, err
		}
		for i := range alarms {
			a := &alarms[i]
			composite := a.AlarmRule != ""
			switch {
			case composite && !wantComposite, !composite && !wantMetric,
				state != "" && a.StateValue != state,
				children != "" && !slices.Contains(childrenOf, a.AlarmName),
				parents != "" && !(composite && slices.Contains(ruleNames(a), parents)):
				continue
			}
			if count == max {
				next = cwEncodeToken("alarm", last)
				break
			}
			count++
			last = a.AlarmName
			if composite {
				compositeAlarms = append(compositeAlarms, c.compositeObj(a))
			} else {
				metricAlarms = append(metricAlarms, c.alarmObj(a))
			}
		}
	}
	out := cwObj{{"MetricAlarms", metricAlarms}, {"CompositeAlarms", compositeAlarms}}
	out.addStr("NextToken", next)
	return out, nil
}

// name returns the AlarmName of an alarm built by alarmObj.
func (o cwObj) name() string {
	for _, e := range o {
		if e.k == "AlarmName" {
			s, _ := e.v.(string)
			return s
		}
	}
	return ""
}

// alarmObj is a MetricAlarm as DescribeAlarms returns it.
func (c *API) alarmObj(a *kiln.Alarm) cwObj {
	o := c.alarmCommon(a)
	o.addStr("MetricName", a.MetricName)
	o.addStr("Namespace", a.Namespace)
	o.addStr("Statistic", a.Statistic)
	o.addStr("ExtendedStatistic", a.ExtendedStatistic)
	o.add("Dimensions", dimensionList(a.Dimensions))
	if a.Period > 0 {
		o.add("Period", a.Period)
	}
	o.addStr("Unit", a.Unit)
	if a.EvaluationPeriods > 0 {
		o.add("EvaluationPeriods", a.EvaluationPeriods)
	}
	if a.DatapointsToAlarm > 0 {
		o.add("DatapointsToAlarm", a.DatapointsToAlarm)
	}
	o.add("Threshold", a.Threshold)
	o.addStr("ComparisonOperator", a.ComparisonOperator)
	o.addStr("TreatMissingData", a.TreatMissingData)
	o.addStr("EvaluateLowSampleCountPercentile", a.EvaluateLowSampleCountPercentile)
	o.addTime("StateTransitionedTimestamp", a.StateTransitionedTimestamp)
	return o
}

// compositeObj is a CompositeAlarm as DescribeAlarms returns it.
func (c *API) compositeObj(a *kiln.Alarm) cwObj {
	o := c.alarmCommon(a)
	o.add("AlarmRule", a.AlarmRule)
	o.addTime("StateTransitionedTimestamp", a.StateTransitionedTimestamp)
	return o
}

// alarmCommon holds the members both kinds of alarm have.
func (c *API) alarmCommon(a *kiln.Alarm) cwObj {
	var o cwObj
	o.add("AlarmName", a.AlarmName)
	arn := a.AlarmArn
	if arn == "" {
		arn = c.alarmArn(a.AlarmName)
	}
	o.add("AlarmArn", arn)
	o.addStr("AlarmDescription", a.AlarmDescription)
	o.addTime("AlarmConfigurationUpdatedTimestamp", a.AlarmConfigurationUpdatedTimestamp)
	enabled := true
	if a.ActionsEnabled != nil {
		enabled = *a.ActionsEnabled
	}
	o.add("ActionsEnabled", enabled)
	o.add("OKActions", []any{})
	o.add("AlarmActions", []any{})
	o.add("InsufficientDataActions", []any{})
	o.addStr("StateValue", a.StateValue)
	o.addStr("StateReason", a.StateReason)
	o.addStr("StateReasonData", a.StateReasonData)
	o.addTime("StateUpdatedTimestamp", a.StateUpdatedTimestamp)
	return o
}

func dimensionList(dims []kiln.Dimension) []any {
	l := make([]any, len(dims))
	for i, d := range dims {
		l[i] = cwObj{{"Name", d.Name}, {"Value", d.Value}}
	}
	return l
}

func (c *API) deleteAlarms(ctx context.Context, in cwParams) (cwObj, error) {
	names := in.strs("AlarmNames")
	if err := in.err(); err != nil {
		return nil, err
	}
	switch {
	case len(names) == 0:
		return nil, cwErrValidation("AlarmNames is required: name at least one alarm to delete.")
	case len(names) > cwMaxAlarmNames:
		return nil, cwErrValidation("AlarmNames has %d names; at most %d are allowed.", len(names), cwMaxAlarmNames)
	}
	return nil, c.Service.DeleteAlarms(ctx, names)
}

func (c *API) setAlarmState(ctx context.Context, in cwParams) (cwObj, error) {
	name := in.str("AlarmName")
	state := in.str("StateValue")
	reason := in.str("StateReason")
	data := in.str("StateReasonData")
	if err := in.err(); err != nil {
		return nil, err
	}
	switch {
	case name == "":
		return nil, cwErrValidation("AlarmName is required.")
	case state == "":
		return nil, cwErrValidation("StateValue is required.")
	case reason == "":
		return nil, cwErrValidation("StateReason is required.")
	}
	return nil, c.Service.SetAlarmState(ctx, name, state, reason, data)
}

func (c *API) describeAlarmHistory(ctx context.Context, in cwParams) (cwObj, error) {
	name := in.str("AlarmName")
	contributor := in.str("AlarmContributorId")
	types := in.strs("AlarmTypes")
	itemType := in.str("HistoryItemType")
	start, hasStart := in.time("StartDate")
	end, hasEnd := in.time("EndDate")
	max, hasMax := in.int("MaxRecords")
	token := in.str("NextToken")
	scanBy := in.str("ScanBy")
	if err := in.err(); err != nil {
		return nil, err
	}
	if hasMax && (max < 1 || max > cwMaxRecords) {
		return nil, cwErrValidation("MaxRecords must be from 1 to %d, got %d.", cwMaxRecords, max)
	}
	if !hasMax {
		max = cwDefaultRecords
	}
	if err := cwCheckEnum("HistoryItemType", itemType, "ConfigurationUpdate", "StateUpdate", "Action", "AlarmContributorStateUpdate", "AlarmContributorAction"); err != nil {
		return nil, err
	}
	if err := cwCheckEnum("ScanBy", scanBy, "TimestampDescending", "TimestampAscending"); err != nil {
		return nil, err
	}
	// Without AlarmTypes, CloudWatch describes metric alarms only.
	wantMetric, wantComposite := len(types) == 0, false
	for i, t := range types {
		if err := cwCheckEnum(fmt.Sprintf("AlarmTypes[%d]", i), t, "MetricAlarm", "CompositeAlarm"); err != nil {
			return nil, err
		}
		wantMetric = wantMetric || t == "MetricAlarm"
		wantComposite = wantComposite || t == "CompositeAlarm"
	}
	if !hasEnd {
		end = c.now()
	}
	if hasStart && end.Before(start) {
		return nil, cwErrInvalidValue("EndDate (%s) is before StartDate (%s).", end.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339))
	}
	offset := 0
	if token != "" {
		s, ok := cwDecodeToken("history", token)
		n, err := strconv.Atoi(s)
		if !ok || err != nil || n < 0 {
			return nil, cwErrNextToken(token)
		}
		offset = n
	}

	items, err := c.Service.AlarmHistory(ctx, name)
	if err != nil {
		return nil, err
	}
	if !wantMetric || contributor != "" {
		items = nil // Kiln has neither composite alarms nor contributors.
	}
	items = slices.DeleteFunc(items, func(h kiln.AlarmHistoryItem) bool {
		return itemType != "" && h.HistoryItemType != itemType ||
			hasStart && h.Timestamp.Before(start) ||
			h.Timestamp.After(end)
	})
	asc := scanBy == "TimestampAscending"
	slices.SortStableFunc(items, func(a, b kiln.AlarmHistoryItem) int {
		if asc {
			return a.Timestamp.Compare(b.Timestamp)
		}
		return b.Timestamp.Compare(a.Timestamp)
	})
	if offset > len(items) {
		offset = len(items)
	}
	page := items[offset:]
	next := ""
	if len(page) > max {
		page = page[:max]
		next = cwEncodeToken("history", strconv.Itoa(offset+max))
	}
	l := make([]any, len(page))
	for i, h := range page {
		var o cwObj
		o.add("AlarmName", h.AlarmName)
		o.add("AlarmType", "MetricAlarm")
		o.addTime("Timestamp", h.Timestamp)
		o.addStr("HistoryItemType", h.HistoryItemType)
		o.addStr("HistorySummary", h.HistorySummary)
		o.addStr("HistoryData", h.HistoryData)
		l[i] = o
	}
	out := cwObj{{"AlarmHistoryItems", l}}
	out.addStr("NextToken", next)
	return out, nil
}

// cwMetricSpec is a metric and a period of it, as GetMetricStatistics and
// GetMetricData's MetricStat name them.
type cwMetricSpec struct {
	namespace, metricName string
	dims                  []kiln.Dimension
	period                int
	unit                  string
}

func cwReadMetricSpec(m cwParams, periodMember string, period int, hasPeriod bool, unit string) (cwMetricSpec, error) {
	s := cwMetricSpec{
		namespace:  m.str("Namespace"),
		metricName: m.str("MetricName"),
		dims:       cwReadDimensions(m, "Dimensions", true),
		period:     period,
		unit:       unit,
	}
	if err := m.err(); err != nil {
		return s, err
	}
	switch {
	case s.namespace == "":
		return s, cwErrValidation("%s is required.", m.name("Namespace"))
	case s.metricName == "":
		return s, cwErrValidation("%s is required.", m.name("MetricName"))
	case len(s.dims) > cwMaxDimensions:
		return s, cwErrValidation("%s has %d entries; at most %d are allowed.", m.name("Dimensions"), len(s.dims), cwMaxDimensions)
	case !hasPeriod:
		return s, cwErrValidation("%s is required.", periodMember)
	case unit != "" && !cwIsStandardUnit(unit):
		return s, cwErrValidation("Unit %q is not one of CloudWatch's standard units.", unit)
	}
	return s, nil
}

// query asks the service for one statistic of the metric. Kiln records each
// metric in one unit, so asking for another unit finds no data, as in
// CloudWatch.
func (c *API) query(ctx context.Context, s cwMetricSpec, stat string, start, end time.Time) ([]kiln.Datapoint, error) {
	if s.unit != "" && s.unit != cwMetricUnit(s.metricName) {
		return nil, nil
	}
	return c.Service.GetMetricStatistics(ctx, kiln.MetricQuery{
		Namespace: s.namespace, MetricName: s.metricName, Dimensions: s.dims,
		Statistic: stat, Period: s.period, StartTime: start, EndTime: end,
	})
}

func (c *API) getMetricStatistics(ctx context.Context, in cwParams) (cwObj, error) {
	period, hasPeriod := in.int("Period")
	start, hasStart := in.time("StartTime")
	end, hasEnd := in.time("EndTime")
	stats := in.strs("Statistics")
	ext := in.strs("ExtendedStatistics")
	spec, err := cwReadMetricSpec(in, "Period", period, hasPeriod, in.str("Unit"))
	if err != nil {
		return nil, err
	}
	switch {
	case !hasStart:
		return nil, cwErrValidation("StartTime is required.")
	case !hasEnd:
		return nil, cwErrValidation("EndTime is required.")
	case !start.Before(end):
		return nil, cwErrInvalidValue("The parameter StartTime must be less than the parameter EndTime.")
	case len(stats) == 0 && len(ext) == 0:
		return nil, cwErrMissing("Specify Statistics or ExtendedStatistics.")
	case len(stats) > 0 && len(ext) > 0:
		return nil, cwErrCombination("Specify Statistics or ExtendedStatistics, not both.")
	case len(stats) > cwMaxStatistics:
		return nil, cwErrValidation("Statistics has %d entries; at most %d are allowed.", len(stats), cwMaxStatistics)
	case len(ext) > cwMaxExtendedStats:
		return nil, cwErrValidation("ExtendedStatistics has %d entries; at most %d are allowed.", len(ext), cwMaxExtendedStats)
	}
	for i, s := range stats {
		if !kiln.ValidStatistic(s) {
			return nil, cwErrValidation("Statistics[%d] %q is not one of SampleCount, Average, Sum, Minimum, Maximum.", i, s)
		}
	}
	for i, s := range ext {
		if _, ok := kiln.ParsePercentile(s); !ok {
			return nil, cwErrInvalidValue("ExtendedStatistics[%d] %q is not a percentile such as p99 or p99.9 (the only extended statistics Kiln computes).", i, s)
		}
	}

	type point struct {
		t    time.Time
		vals cwObj
		ext  cwMap
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
				p.ext = append(p.ext, cwKV{stat, dp.Value})
			}
		}
	}
	points := make([]*point, 0, len(byTime))
	for _, p := range byTime {
		points = append(points, p)
	}
	slices.SortFunc(points, func(a, b *point) int { return a.t.Compare(b.t) })
	unit := cwMetricUnit(spec.metricName)
	l := make([]any, len(points))
	for i, p := range points {
		o := cwObj{{"Timestamp", p.t}}
		o = append(o, p.vals...)
		if len(p.ext) > 0 {
			o.add("ExtendedStatistics", p.ext)
		}
		o.add("Unit", unit)
		l[i] = o
	}
	return cwObj{{"Label", spec.metricName}, {"Datapoints", l}}, nil
}

var cwMetricQueryIDRE = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

func (c *API) getMetricData(ctx context.Context, in cwParams) (cwObj, error) {
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
		return nil, cwErrValidation("StartTime is required.")
	case !hasEnd:
		return nil, cwErrValidation("EndTime is required.")
	case !start.Before(end):
		return nil, cwErrValidation("The parameter StartTime must be less than the parameter EndTime.")
	case len(queries) == 0:
		return nil, cwErrValidation("MetricDataQueries is required: give at least one query.")
	case len(queries) > cwMaxMetricQueries:
		return nil, cwErrValidation("MetricDataQueries has %d entries; at most %d are allowed.", len(queries), cwMaxMetricQueries)
	}
	if err := cwCheckEnum("ScanBy", scanBy, "TimestampDescending", "TimestampAscending"); err != nil {
		return nil, err
	}

	type plan struct {
		id, label, stat string
		spec            cwMetricSpec
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
			return nil, cwErrValidation("%s is required.", q.name("Id"))
		case !cwMetricQueryIDRE.MatchString(p.id) || len(p.id) > 255:
			return nil, cwErrValidation("%s %q must start with a lower-case letter and hold only letters, digits and underscores.", q.name("Id"), p.id)
		case seen[p.id]:
			return nil, cwErrValidation("%s %q is used by more than one query.", q.name("Id"), p.id)
		case q.has("Expression"):
			return nil, cwErrValidation("%s (Id %q): metric math Expression is not supported by Kiln; query each metric with MetricStat.", q.name("Expression"), p.id)
		}
		seen[p.id] = true
		ms, ok := q.sub("MetricStat")
		if err := q.err(); err != nil {
			return nil, err
		}
		if !ok {
			return nil, cwErrValidation("%s is required (Id %q).", q.name("MetricStat"), p.id)
		}
		period, hasPeriod := ms.int("Period")
		p.stat = ms.str("Stat")
		unit := ms.str("Unit")
		m, ok := ms.sub("Metric")
		if err := ms.err(); err != nil {
			return nil, err
		}
		if !ok {
			return nil, cwErrValidation("%s is required.", ms.name("Metric"))
		}
		spec, err := cwReadMetricSpec(m, ms.name("Period"), period, hasPeriod, unit)
		if err != nil {
			return nil, err
		}
		if _, pct := kiln.ParsePercentile(p.stat); !pct && !kiln.ValidStatistic(p.stat) {
			return nil, cwErrValidation("%s %q is not one of SampleCount, Average, Sum, Minimum, Maximum or a percentile such as p99.", ms.name("Stat"), p.stat)
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
		results = append(results, cwObj{
			{"Id", p.id}, {"Label", p.label}, {"Timestamps", ts}, {"Values", vs},
			{"StatusCode", "Complete"}, {"Messages", []any{}},
		})
	}
	return cwObj{{"MetricDataResults", results}, {"Messages", []any{}}}, nil
}

func (c *API) listMetrics(ctx context.Context, in cwParams) (cwObj, error) {
	namespace := in.str("Namespace")
	metricName := in.str("MetricName")
	dims := cwReadDimensions(in, "Dimensions", false)
	token := in.str("NextToken")
	recent := in.str("RecentlyActive")
	in.bool("IncludeLinkedAccounts")
	in.str("OwningAccount")
	if err := in.err(); err != nil {
		return nil, err
	}
	if len(dims) > cwMaxDimensions {
		return nil, cwErrValidation("Dimensions has %d entries; at most %d are allowed.", len(dims), cwMaxDimensions)
	}
	if err := cwCheckEnum("RecentlyActive", recent, "PT3H"); err != nil {
		return nil, err
	}
	offset := 0
	if token != "" {
		s, ok := cwDecodeToken("metrics", token)
		n, err := strconv.Atoi(s)
		if !ok || err != nil || n < 0 {
			return nil, cwErrNextToken(token)
		}
		offset = n
	}
	metrics, err := c.Service.ListMetrics(ctx, namespace, metricName, dims)
	if err != nil {
		return nil, err
	}
	if offset > len(metrics) {
		offset = len(metrics)
	}
	page := metrics[offset:]
	next := ""
	if len(page) > cwListMetricsPage {
		page = page[:cwListMetricsPage]
		next = cwEncodeToken("metrics", strconv.Itoa(offset+cwListMetricsPage))
	}
	l := make([]any, len(page))
	for i, m := range page {
		l[i] = cwObj{{"Namespace", m.Namespace}, {"MetricName", m.MetricName}, {"Dimensions", dimensionList(m.Dimensions)}}
	}
	out := cwObj{{"Metrics", l}}
	out.addStr("NextToken", next)
	return out, nil
}

// cwReadDimensions reads a list of Dimension (needValue) or DimensionFilter.
func cwReadDimensions(in cwParams, member string, needValue bool) []kiln.Dimension {
	ds := in.structs(member)
	if len(ds) == 0 {
		return nil
	}
	out := make([]kiln.Dimension, 0, len(ds))
	for _, d := range ds {
		dim := kiln.Dimension{Name: d.str("Name"), Value: d.str("Value")}
		switch {
		case dim.Name == "":
			in.fail(cwErrValidation("%s is required.", d.name("Name")))
		case needValue && dim.Value == "":
			in.fail(cwErrValidation("%s is required.", d.name("Value")))
		}
		out = append(out, dim)
	}
	return out
}

// cwCheckEnum accepts "" (absent) or one of the values.
func cwCheckEnum(member, v string, values ...string) error {
	if v == "" || slices.Contains(values, v) {
		return nil
	}
	return cwErrValidation("%s %q is not one of %s.", member, v, strings.Join(values, ", "))
}

// cwMetricUnit is the CloudWatch unit of one of Kiln's metrics: its latencies
// are in microseconds, its counts have none.
func cwMetricUnit(metricName string) string {
	switch metricName {
	case "ModelLatency", "OverheadLatency":
		return "Microseconds"
	}
	return "None"
}

// cwIsStandardUnit reports whether u is one of CloudWatch's StandardUnit values.
func cwIsStandardUnit(u string) bool {
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

// Paging tokens are opaque to clients: the kind of listing and where the
// next page starts.
func cwEncodeToken(kind, pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + pos))
}

func cwDecodeToken(kind, token string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", false
	}
	pos, ok := strings.CutPrefix(string(b), kind+":")
	return pos, ok
}

// cwTagsTarget reads ResourceARN, which must name an alarm.
func cwTagsTarget(in cwParams) (string, error) {
	arn := in.str("ResourceARN")
	if err := in.err(); err != nil {
		return "", err
	}
	switch {
	case arn == "":
		return "", cwErrMissing("ResourceARN is required.")
	case !strings.HasPrefix(arn, "arn:aws:cloudwatch:"):
		return "", cwErrValidation("ResourceARN %q is not a CloudWatch alarm's ARN (arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME).", api.Truncate(arn, 200))
	}
	return arn, nil
}

// cwTagsError gives the tag operations' not-found error its own shape.
func cwTagsError(err error) error {
	if kiln.ErrorCode(err) == kiln.ENOTFOUND {
		return &cwError{status: http.StatusNotFound, code: "ResourceNotFoundException", shape: cwShapeNS + "ResourceNotFoundException", msg: kiln.ErrorMessage(err)}
	}
	return err
}

// cwTags encodes tags as a result member.
func cwTags(tags []kiln.Tag) []any {
	out := make([]any, 0, len(tags))
	for _, t := range tags {
		out = append(out, cwObj{{"Key", t.Key}, {"Value", t.Value}})
	}
	return out
}

func (c *API) tagResource(ctx context.Context, in cwParams) (cwObj, error) {
	arn, err := cwTagsTarget(in)
	if err != nil {
		return nil, err
	}
	tags := cwReadTags(in)
	if err := in.err(); err != nil {
		return nil, err
	}
	if _, err = c.Service.AddTags(ctx, arn, tags); err != nil {
		return nil, cwTagsError(err)
	}
	return cwObj{}, nil // an empty result, which the query protocol sends
}

func (c *API) untagResource(ctx context.Context, in cwParams) (cwObj, error) {
	arn, err := cwTagsTarget(in)
	if err != nil {
		return nil, err
	}
	keys := in.strs("TagKeys")
	if err := in.err(); err != nil {
		return nil, err
	}
	if err := c.Service.DeleteTags(ctx, arn, keys); err != nil {
		return nil, cwTagsError(err)
	}
	return cwObj{}, nil
}

func (c *API) listTagsForResource(ctx context.Context, in cwParams) (cwObj, error) {
	arn, err := cwTagsTarget(in)
	if err != nil {
		return nil, err
	}
	tags, err := c.Service.ListTags(ctx, arn)
	if err != nil {
		return nil, cwTagsError(err)
	}
	return cwObj{{"Tags", cwTags(tags)}}, nil
}

func (c *API) putMetricData(ctx context.Context, in cwParams) (cwObj, error) {
	namespace := in.str("Namespace")
	if in.has("EntityMetricData") {
		return nil, cwErrValidation("EntityMetricData: entities are not supported by Kiln; use MetricData.")
	}
	var data []kiln.MetricDatum
	for _, m := range in.structs("MetricData") {
		d := kiln.MetricDatum{
			MetricName: m.str("MetricName"),
			Dimensions: cwReadDimensions(m, "Dimensions", true),
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
		if d.Unit != "" && !cwIsStandardUnit(d.Unit) {
			return nil, cwErrValidation("%s.Unit %q is not one of CloudWatch's standard units.", m.path, d.Unit)
		}
		data = append(data, d)
	}
	if err := in.err(); err != nil {
		return nil, err
	}
	if err := c.Service.PutMetricData(ctx, namespace, data); err != nil {
		if kiln.ErrorCode(err) == kiln.EINVALID {
			// PutMetricData's errors are InvalidParameterValue.
			return nil, &cwError{status: http.StatusBadRequest, code: "InvalidParameterValue", shape: cwShapeNS + "InvalidParameterValueException", msg: kiln.ErrorMessage(err)}
		}
		return nil, err
	}
	return nil, nil
}
