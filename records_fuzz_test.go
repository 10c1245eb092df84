package kiln

import (
	"encoding/json"
	"testing"
)

// The record fuzz targets decode arbitrary JSON into a whole record, as an
// API or the store would hand it over, and validate it: validation never
// panics, and what it accepts is within the limits the rest of Kiln relies
// on. The consumers of valid records are fuzzed beside them: the alarm
// evaluation in internal/alarm, the deployment plan in internal/plan.

func FuzzModelRecord(f *testing.F) {
	f.Add(`{"ModelName":"m","PrimaryContainer":{"Image":"python3 -m demo","Environment":{"A":"1"},"ContainerStartupHealthCheckTimeoutInSeconds":60}}`)
	f.Add(`{"ModelName":"m","PrimaryContainer":{"Image":" ","ContainerStartupHealthCheckTimeoutInSeconds":-9223372036854775808}}`)
	f.Fuzz(func(t *testing.T, js string) {
		var m Model
		if json.Unmarshal([]byte(js), &m) != nil {
			return
		}
		if err := m.Validate(); err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("Validate: %v is not EINVALID", err)
			}
			return
		}
		c := m.PrimaryContainer
		if len(c.Environment) > MaxEnvironment || len(c.Image) > MaxImageLength {
			t.Fatalf("accepted %d environment entries, image of %d", len(c.Environment), len(c.Image))
		}
		if tmo := c.ContainerStartupHealthCheckTimeoutInSeconds; tmo < 0 || tmo > 3600 {
			t.Fatalf("accepted a startup timeout of %d s", tmo)
		}
	})
}

func FuzzEndpointConfigRecord(f *testing.F) {
	f.Add(`{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"m","InitialInstanceCount":2,"InitialVariantWeight":1}]}`)
	f.Add(`{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"m","InitialInstanceCount":9223372036854775807,"InitialVariantWeight":1e308}]}`)
	f.Fuzz(func(t *testing.T, js string) {
		var c EndpointConfig
		if json.Unmarshal([]byte(js), &c) != nil {
			return
		}
		if err := c.Validate(); err != nil {
			return
		}
		total := 0
		for _, v := range c.ProductionVariants {
			if v.InitialInstanceCount < 1 || v.InitialInstanceCount > MaxInstancesPerVariant {
				t.Fatalf("accepted %d instances", v.InitialInstanceCount)
			}
			total += v.InitialInstanceCount
		}
		if total > MaxVariants*MaxInstancesPerVariant {
			t.Fatalf("accepted %d instances in all", total)
		}
	})
}

func FuzzEndpointRecord(f *testing.F) {
	f.Add(`{"EndpointName":"e","EndpointStatus":"InService","Fleets":[{"ID":"f1","VariantName":"v","ModelName":"m","Container":{"Image":"true"},"InstanceCount":2,"ActiveInstanceCount":2,"TrafficShare":1}]}`)
	f.Add(`{"EndpointName":"e","Fleets":[{"ID":"f1","ModelName":"m","Container":{"Image":"true"},"InstanceCount":1000000000,"ActiveInstanceCount":-1,"TrafficShare":2}]}`)
	f.Fuzz(func(t *testing.T, js string) {
		var e Endpoint
		if json.Unmarshal([]byte(js), &e) != nil {
			return
		}
		if err := e.ValidateStored(); err != nil {
			return
		}
		for _, fl := range e.Fleets {
			if fl.InstanceCount > MaxInstancesPerVariant || fl.ActiveInstanceCount > fl.InstanceCount || fl.TrafficShare > 1+1e-9 || !(fl.TrafficShare >= 0) {
				t.Fatalf("accepted fleet %+v", fl)
			}
		}
		_ = e.LastDeploymentConfig.ExecutionTimeout()
	})
}

func FuzzAlarmValidate(f *testing.F) {
	f.Add(`{"AlarmName":"a","Namespace":"AWS/SageMaker","MetricName":"Invocations","Statistic":"Sum","Period":86400,"EvaluationPeriods":4611686018427387904,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}`)
	f.Add(`{"AlarmName":"a","Namespace":"n","MetricName":"m","ExtendedStatistic":"p99","Period":1,"EvaluationPeriods":86400,"DatapointsToAlarm":86400,"Threshold":0,"ComparisonOperator":"LessThanThreshold"}`)
	f.Fuzz(func(t *testing.T, js string) {
		var a Alarm
		if json.Unmarshal([]byte(js), &a) != nil {
			return
		}
		if err := a.Validate(); err != nil {
			return
		}
		if a.AlarmRule != "" || a.Judge != nil {
			return
		}
		// Accepted: the evaluation range is within CloudWatch's seven days,
		// checked by division, not by a product that could overflow.
		if a.Period < 1 || a.Period > MaxPeriodSeconds || a.EvaluationPeriods < 1 || a.EvaluationPeriods > MaxLongEvaluationSecond/a.Period {
			t.Fatalf("accepted Period %d, EvaluationPeriods %d", a.Period, a.EvaluationPeriods)
		}
		if a.Datapoints() < 1 || a.Datapoints() > a.EvaluationPeriods {
			t.Fatalf("accepted DatapointsToAlarm %d of %d", a.DatapointsToAlarm, a.EvaluationPeriods)
		}
	})
}
