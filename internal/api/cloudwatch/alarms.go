package cloudwatch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
)

// The members of PutMetricAlarm that Kiln does not implement.
var unsupportedAlarmMembers = []unsupportedMember{
	{"Metrics", "metric math alarms (Metrics) are not supported by Kiln; alarm on one metric with MetricName, Namespace, Dimensions and Statistic or ExtendedStatistic"},
	{"ThresholdMetricId", "anomaly detection alarms (ThresholdMetricId) are not supported by Kiln; set Threshold"},
	{"AlarmActions", noActions},
	{"OKActions", noActions},
	{"InsufficientDataActions", noActions},
	{"ActionConfiguration", "ActionConfiguration is not supported by Kiln"},
	{"EvaluationCriteria", "EvaluationCriteria (PromQL alarms) is not supported through the CloudWatch API; use Kiln's native API for PromQL alarms"},
	{"EvaluationInterval", "EvaluationInterval is not supported by Kiln"},
	{"EvaluationWindow", "EvaluationWindow is not supported by Kiln"},
	{"WarmUpConfiguration", "WarmUpConfiguration is not supported by Kiln"},
}

func (c *API) putMetricAlarm(ctx context.Context, in params) (obj, error) {
	if err := refuse(in, unsupportedAlarmMembers); err != nil {
		return nil, err
	}
	a := kiln.Alarm{
		AlarmName:                        in.str("AlarmName"),
		AlarmDescription:                 in.str("AlarmDescription"),
		ActionsEnabled:                   in.bool("ActionsEnabled"),
		Namespace:                        in.str("Namespace"),
		MetricName:                       in.str("MetricName"),
		Dimensions:                       readDimensions(in, "Dimensions", true),
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
	a.Tags = readTags(in)
	if err := in.err(); err != nil {
		return nil, err
	}
	switch {
	case a.AlarmName == "":
		return nil, errValidation("AlarmName is required.")
	case !hasThreshold:
		return nil, errValidation("Threshold is required.")
	case a.EvaluationPeriods == 0:
		return nil, errValidation("EvaluationPeriods is required and must be at least 1.")
	case hasDTA && dta < 1:
		return nil, errValidation("DatapointsToAlarm must be at least 1, got %d.", dta)
	case a.Unit != "" && !isStandardUnit(a.Unit):
		return nil, errValidation("Unit %q is not one of CloudWatch's standard units.", a.Unit)
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
			return errValidation("Alarm %q is %s; it cannot become %s.", a.AlarmName, kind[old.AlarmRule != ""], kind[a.AlarmRule != ""])
		}
		a.Tags = old.Tags
	} else if kiln.ErrorCode(err) != kiln.ENOTFOUND {
		return err
	}
	_, err := c.Service.PutAlarm(ctx, a)
	return err
}

// The members of PutCompositeAlarm that Kiln does not implement.
var unsupportedCompositeMembers = []unsupportedMember{
	{"AlarmActions", noActions},
	{"OKActions", noActions},
	{"InsufficientDataActions", noActions},
	{"ActionsSuppressor", noSuppression},
	{"ActionsSuppressorWaitPeriod", noSuppression},
	{"ActionsSuppressorExtensionPeriod", noSuppression},
}

func (c *API) putCompositeAlarm(ctx context.Context, in params) (obj, error) {
	if err := refuse(in, unsupportedCompositeMembers); err != nil {
		return nil, err
	}
	a := kiln.Alarm{
		AlarmName:        in.str("AlarmName"),
		AlarmDescription: in.str("AlarmDescription"),
		AlarmRule:        in.str("AlarmRule"),
		ActionsEnabled:   in.bool("ActionsEnabled"),
		Tags:             readTags(in),
	}
	if err := in.err(); err != nil {
		return nil, err
	}
	switch {
	case a.AlarmName == "":
		return nil, errValidation("AlarmName is required.")
	case a.AlarmRule == "":
		return nil, errValidation("AlarmRule is required.")
	}
	return nil, c.putAlarm(ctx, &a)
}

func (c *API) describeAlarms(ctx context.Context, in params) (obj, error) {
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
	case len(names) > maxAlarmNames:
		return nil, errValidation("AlarmNames has %d names; at most %d are allowed.", len(names), maxAlarmNames)
	case len(names) > 0 && prefix != "":
		return nil, errCombination("Specify AlarmNames or AlarmNamePrefix, not both.")
	case hasMax && (max < 1 || max > maxRecords):
		return nil, errValidation("MaxRecords must be from 1 to %d, got %d.", maxRecords, max)
	}
	if err := checkEnum("StateValue", state, kiln.StateOK, kiln.StateAlarm, kiln.StateInsufficientData); err != nil {
		return nil, err
	}
	// Without AlarmTypes, CloudWatch describes metric alarms only.
	wantMetric, wantComposite := len(types) == 0, false
	for i, t := range types {
		if err := checkEnum(fmt.Sprintf("AlarmTypes[%d]", i), t, "MetricAlarm", "CompositeAlarm"); err != nil {
			return nil, err
		}
		wantMetric = wantMetric || t == "MetricAlarm"
		wantComposite = wantComposite || t == "CompositeAlarm"
	}
	if !hasMax {
		max = defaultRecords
	}
	after := ""
	if token != "" {
		var ok bool
		if after, ok = decodeToken("alarm", token); !ok {
			return nil, errNextToken(token)
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
				next = encodeToken("alarm", last)
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
	out := obj{{"MetricAlarms", metricAlarms}, {"CompositeAlarms", compositeAlarms}}
	out.addStr("NextToken", next)
	return out, nil
}

// name returns the AlarmName of an alarm built by alarmObj.
func (o obj) name() string {
	for _, e := range o {
		if e.k == "AlarmName" {
			s, _ := e.v.(string)
			return s
		}
	}
	return ""
}

// alarmObj is a MetricAlarm as DescribeAlarms returns it.
func (c *API) alarmObj(a *kiln.Alarm) obj {
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
func (c *API) compositeObj(a *kiln.Alarm) obj {
	o := c.alarmCommon(a)
	o.add("AlarmRule", a.AlarmRule)
	o.addTime("StateTransitionedTimestamp", a.StateTransitionedTimestamp)
	return o
}

// alarmCommon holds the members both kinds of alarm have.
func (c *API) alarmCommon(a *kiln.Alarm) obj {
	var o obj
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

func (c *API) deleteAlarms(ctx context.Context, in params) (obj, error) {
	names := in.strs("AlarmNames")
	if err := in.err(); err != nil {
		return nil, err
	}
	switch {
	case len(names) == 0:
		return nil, errValidation("AlarmNames is required: name at least one alarm to delete.")
	case len(names) > maxAlarmNames:
		return nil, errValidation("AlarmNames has %d names; at most %d are allowed.", len(names), maxAlarmNames)
	}
	return nil, c.Service.DeleteAlarms(ctx, names)
}

func (c *API) setAlarmState(ctx context.Context, in params) (obj, error) {
	name := in.str("AlarmName")
	state := in.str("StateValue")
	reason := in.str("StateReason")
	data := in.str("StateReasonData")
	if err := in.err(); err != nil {
		return nil, err
	}
	switch {
	case name == "":
		return nil, errValidation("AlarmName is required.")
	case state == "":
		return nil, errValidation("StateValue is required.")
	case reason == "":
		return nil, errValidation("StateReason is required.")
	}
	return nil, c.Service.SetAlarmState(ctx, name, state, reason, data)
}

func (c *API) describeAlarmHistory(ctx context.Context, in params) (obj, error) {
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
	if hasMax && (max < 1 || max > maxRecords) {
		return nil, errValidation("MaxRecords must be from 1 to %d, got %d.", maxRecords, max)
	}
	if !hasMax {
		max = defaultRecords
	}
	if err := checkEnum("HistoryItemType", itemType, "ConfigurationUpdate", "StateUpdate", "Action", "AlarmContributorStateUpdate", "AlarmContributorAction"); err != nil {
		return nil, err
	}
	if err := checkEnum("ScanBy", scanBy, "TimestampDescending", "TimestampAscending"); err != nil {
		return nil, err
	}
	// Without AlarmTypes, CloudWatch describes metric alarms only.
	wantMetric, wantComposite := len(types) == 0, false
	for i, t := range types {
		if err := checkEnum(fmt.Sprintf("AlarmTypes[%d]", i), t, "MetricAlarm", "CompositeAlarm"); err != nil {
			return nil, err
		}
		wantMetric = wantMetric || t == "MetricAlarm"
		wantComposite = wantComposite || t == "CompositeAlarm"
	}
	if !hasEnd {
		end = c.now()
	}
	if hasStart && end.Before(start) {
		return nil, errInvalidValue("EndDate (%s) is before StartDate (%s).", end.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339))
	}
	page, next, err := offsetPage("history", token, max, func() ([]kiln.AlarmHistoryItem, error) {
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
		return items, nil
	})
	if err != nil {
		return nil, err
	}
	l := make([]any, len(page))
	for i, h := range page {
		var o obj
		o.add("AlarmName", h.AlarmName)
		o.add("AlarmType", "MetricAlarm")
		o.addTime("Timestamp", h.Timestamp)
		o.addStr("HistoryItemType", h.HistoryItemType)
		o.addStr("HistorySummary", h.HistorySummary)
		o.addStr("HistoryData", h.HistoryData)
		l[i] = o
	}
	out := obj{{"AlarmHistoryItems", l}}
	out.addStr("NextToken", next)
	return out, nil
}
