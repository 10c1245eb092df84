// Package servicetest is the shared suite of the service over a store:
// every store implementation runs it from its tests, with
//
//	servicetest.Run(t, func(t *testing.T) store.Store { ... })
//
// so that the service behaves the same on each. The store must be new and
// empty each time; the suite closes it when the test that opened it ends.
package servicetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
	"github.com/kiln-serve/kiln/internal/service"
	"github.com/kiln-serve/kiln/internal/store"
)

// Run runs the suite; the subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Models", testModels},
		{"EndpointConfigs", testEndpointConfigs},
		{"Endpoints", testEndpoints},
		{"EndpointUpdates", testEndpointUpdates},
		{"DeleteEndpointTakesItsHistory", testDeleteEndpointHistory},
		{"Alarms", testAlarms},
		{"AlarmStates", testAlarmStates},
		{"AlarmRuleCycle", testAlarmRuleCycle},
		{"InvalidInputWritesNothing", testInvalidInput},
		{"Quotas", testQuotas},
		{"RecordSizeQuota", testRecordSize},
		{"Paging", testPaging},
		{"Tags", testTags},
		{"TagsByARN", testTagsByARN},
		{"ConcurrentCreates", testConcurrentCreates},
		{"ConcurrentChanges", testConcurrentChanges},
		{"BadRecordsSetAside", testBadRecords},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			t.Cleanup(func() { st.Close() })
			tt.fn(t, newEnv(st, nil))
		})
	}
}

// start is the fake clock's time at the start of every test.
var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	st  store.Store
	rec *service.Records
	svc *service.Service
	clk clock.Clock
}

func newEnv(st store.Store, quotas *service.Quotas) *env {
	rec := service.NewRecords(st, nil)
	clk := clock.NewFake()
	clk.Advance(start.Sub(clk.Now()))
	return &env{st: st, rec: rec, clk: clk, svc: service.New(service.Options{Records: rec, Quotas: quotas, Clock: clk})}
}

var ctx = context.Background()

func model(name string) *kiln.Model {
	return &kiln.Model{ModelName: name, PrimaryContainer: &kiln.ContainerDef{Image: "/bin/model --port 8080"}}
}

func config(name string, models ...string) *kiln.EndpointConfig {
	c := &kiln.EndpointConfig{EndpointConfigName: name}
	for i, m := range models {
		c.ProductionVariants = append(c.ProductionVariants, kiln.ProductionVariant{
			VariantName: fmt.Sprintf("v%d", i), ModelName: m, InitialInstanceCount: 1, InstanceType: "ml.m5.large", InitialVariantWeight: new(1.0)})
	}
	return c
}

func alarm(name string) *kiln.Alarm {
	return &kiln.Alarm{AlarmName: name, Namespace: "AWS/SageMaker", MetricName: "Invocations",
		Dimensions: []kiln.Dimension{{Name: "EndpointName", Value: "ep"}}, Statistic: "Sum",
		Period: 60, EvaluationPeriods: 3, Threshold: 100, ComparisonOperator: kiln.GreaterThanThreshold}
}

// endpoint creates a model, a config and an endpoint named name.
func (e *env) endpoint(t *testing.T, name string) *kiln.Endpoint {
	t.Helper()
	must(t)(e.svc.CreateModel(ctx, model(name+"-m")))
	must(t)(e.svc.CreateEndpointConfig(ctx, config(name+"-c", name+"-m")))
	ep, err := e.svc.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: name, EndpointConfigName: name + "-c"})
	if err != nil {
		t.Fatalf("CreateEndpoint %s: %v", name, err)
	}
	return ep
}

// must(t)(f()) fails the test if f fails.
func must(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// wantCode fails unless err is a kiln error with code whose message
// contains every one of words.
func wantCode(t *testing.T, what string, err error, code string, words ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got no error, want %s", what, code)
		return
	}
	if got := kiln.ErrorCode(err); got != code {
		t.Errorf("%s: got code %s (%v), want %s", what, got, err, code)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", what, err, w)
		}
	}
}

// keys lists every key of the store.
func (e *env) keys(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, prefix := range []string{"models/", "endpoint-configs/", "endpoints/", "alarms/", "history/", "alarm-history/"} {
		kvs, _, err := e.st.Keys(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			out = append(out, kv.Key)
		}
	}
	return out
}

func testModels(t *testing.T, e *env) {
	m, err := e.svc.CreateModel(ctx, model("Resnet"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:sagemaker:us-east-1:000000000000:model/resnet"; m.ModelArn != want {
		t.Errorf("ModelArn = %q, want %q", m.ModelArn, want)
	}
	if !m.CreationTime.Equal(start) {
		t.Errorf("CreationTime = %v, want the clock's %v", m.CreationTime, start)
	}
	got, err := e.svc.GetModel(ctx, "Resnet")
	if err != nil || got.ModelArn != m.ModelArn || got.PrimaryContainer.Image != m.PrimaryContainer.Image {
		t.Errorf("GetModel = %+v, %v; want what was created", got, err)
	}
	_, err = e.svc.CreateModel(ctx, model("Resnet"))
	wantCode(t, "create again", err, kiln.ECONFLICT, "already existing model")
	must(t)(e.svc.CreateModel(ctx, model("bert")))
	list, err := e.svc.ListModels(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListModels = %d models, %v; want 2", len(list), err)
	}
	if err := e.svc.DeleteModel(ctx, "Resnet"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetModel(ctx, "Resnet")
	wantCode(t, "get deleted", err, kiln.ENOTFOUND, "Resnet")
	wantCode(t, "delete again", e.svc.DeleteModel(ctx, "Resnet"), kiln.ENOTFOUND, "Resnet")
}

func testEndpointConfigs(t *testing.T, e *env) {
	_, err := e.svc.CreateEndpointConfig(ctx, config("c", "missing"))
	wantCode(t, "config of a missing model", err, kiln.ENOTFOUND, "missing")
	must(t)(e.svc.CreateModel(ctx, model("m")))
	c, err := e.svc.CreateEndpointConfig(ctx, config("c", "m"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(c.EndpointConfigArn, ":endpoint-config/c") || !c.CreationTime.Equal(start) {
		t.Errorf("created %q at %v", c.EndpointConfigArn, c.CreationTime)
	}
	_, err = e.svc.CreateEndpointConfig(ctx, config("c", "m"))
	wantCode(t, "create again", err, kiln.ECONFLICT)
	if got, err := e.svc.GetEndpointConfig(ctx, "c"); err != nil || len(got.ProductionVariants) != 1 {
		t.Errorf("GetEndpointConfig = %+v, %v", got, err)
	}
	if list, err := e.svc.ListEndpointConfigs(ctx); err != nil || len(list) != 1 {
		t.Errorf("ListEndpointConfigs = %d, %v; want 1", len(list), err)
	}
	if err := e.svc.DeleteEndpointConfig(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetEndpointConfig(ctx, "c")
	wantCode(t, "get deleted", err, kiln.ENOTFOUND)
}

func testEndpoints(t *testing.T, e *env) {
	ep := e.endpoint(t, "ep")
	if ep.EndpointStatus != kiln.StatusCreating || ep.Deployment == nil || len(ep.Fleets) != 1 {
		t.Errorf("created endpoint: status %s, deployment %v, %d fleets; want Creating with a deployment and one fleet", ep.EndpointStatus, ep.Deployment, len(ep.Fleets))
	}
	got, err := e.svc.GetEndpoint(ctx, "ep")
	if err != nil || got.EndpointArn != ep.EndpointArn || got.EndpointConfigName != "ep-c" {
		t.Errorf("GetEndpoint = %+v, %v", got, err)
	}
	_, err = e.svc.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: "ep", EndpointConfigName: "ep-c"})
	wantCode(t, "create again", err, kiln.ECONFLICT, "already existing endpoint")
	_, err = e.svc.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: "ep2", EndpointConfigName: "nope"})
	wantCode(t, "endpoint of a missing config", err, kiln.ENOTFOUND, "nope")
	if list, err := e.svc.ListEndpoints(ctx); err != nil || len(list) != 1 {
		t.Errorf("ListEndpoints = %d, %v; want 1", len(list), err)
	}
	// No fleet runs here: an endpoint has no instances and no logs.
	if ins, err := e.svc.EndpointInstances(ctx, "ep"); err != nil || len(ins) != 0 {
		t.Errorf("EndpointInstances = %v, %v; want none", ins, err)
	}
	if logs, err := e.svc.EndpointLogs(ctx, "ep", 100); err != nil || logs != "" {
		t.Errorf("EndpointLogs = %q, %v; want none", logs, err)
	}
	_, err = e.svc.EndpointInstances(ctx, "nope")
	wantCode(t, "instances of a missing endpoint", err, kiln.ENOTFOUND, "nope")
	if err := e.svc.DeleteEndpoint(ctx, "ep"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetEndpoint(ctx, "ep")
	wantCode(t, "get deleted", err, kiln.ENOTFOUND, "arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep")
	wantCode(t, "delete again", e.svc.DeleteEndpoint(ctx, "ep"), kiln.ENOTFOUND)
}

// testEndpointUpdates finishes the creation as the controller would, then
// starts an update, stops it and changes weights.
func testEndpointUpdates(t *testing.T, e *env) {
	e.endpoint(t, "ep")
	must(t)(e.svc.CreateEndpointConfig(ctx, config("ep-c2", "ep-m")))
	_, err := e.svc.UpdateEndpoint(ctx, kiln.UpdateEndpointInput{EndpointName: "ep", EndpointConfigName: "ep-c2"})
	if err == nil {
		t.Error("UpdateEndpoint of an endpoint still being created: got no error")
	}
	ep, rev, err := e.rec.Endpoint(ctx, "ep")
	if err != nil {
		t.Fatal(err)
	}
	ep.EndpointStatus, ep.Deployment = kiln.StatusInService, nil
	if _, err := e.rec.PutEndpoint(ctx, ep, rev); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.UpdateEndpoint(ctx, kiln.UpdateEndpointInput{EndpointName: "nope", EndpointConfigName: "ep-c2"})
	wantCode(t, "update a missing endpoint", err, kiln.ENOTFOUND)
	up, err := e.svc.UpdateEndpoint(ctx, kiln.UpdateEndpointInput{EndpointName: "ep", EndpointConfigName: "ep-c2"})
	if err != nil {
		t.Fatal(err)
	}
	if up.EndpointStatus != kiln.StatusUpdating || up.Deployment == nil || up.Deployment.EndpointConfigName != "ep-c2" {
		t.Errorf("updated endpoint: status %s, deployment %+v; want Updating to ep-c2", up.EndpointStatus, up.Deployment)
	}
	stopped, err := e.svc.StopDeployment(ctx, "ep")
	if err != nil {
		t.Fatal(err)
	}
	if stopped.Deployment == nil || stopped.Deployment.RollbackReason == "" {
		t.Errorf("stopped deployment: %+v; want a rollback reason", stopped.Deployment)
	}
	_, err = e.svc.UpdateEndpointWeightsAndCapacities(ctx, kiln.UpdateWeightsInput{EndpointName: "bad name!"})
	wantCode(t, "weights of a bad name", err, kiln.EINVALID, "EndpointName")
}

func testDeleteEndpointHistory(t *testing.T, e *env) {
	e.endpoint(t, "ep")
	if err := e.rec.AppendHistory(ctx, "ep", []kiln.HistoryEvent{{Time: start, Message: "one"}, {Time: start, Message: "two"}}); err != nil {
		t.Fatal(err)
	}
	h, err := e.svc.EndpointHistory(ctx, "ep")
	if err != nil || len(h) != 2 || h[0].Message != "one" || h[1].Message != "two" {
		t.Fatalf("EndpointHistory = %+v, %v; want one, two in order", h, err)
	}
	if err := e.svc.DeleteEndpoint(ctx, "ep"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: "ep", EndpointConfigName: "ep-c"}); err != nil {
		t.Fatal(err)
	}
	if h, err := e.svc.EndpointHistory(ctx, "ep"); err != nil || len(h) != 0 {
		t.Errorf("history of the endpoint made again = %+v, %v; want none", h, err)
	}
}

func testAlarms(t *testing.T, e *env) {
	a, err := e.svc.PutAlarm(ctx, alarm("high"))
	if err != nil {
		t.Fatal(err)
	}
	if a.StateValue != kiln.StateInsufficientData || a.AlarmArn != "arn:aws:cloudwatch:us-east-1:000000000000:alarm:high" {
		t.Errorf("new alarm: state %s, ARN %s", a.StateValue, a.AlarmArn)
	}
	if err := e.svc.SetAlarmState(ctx, "high", kiln.StateAlarm, "by hand", ""); err != nil {
		t.Fatal(err)
	}
	upd := alarm("high")
	upd.Threshold = 200
	if a, err = e.svc.PutAlarm(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if a.StateValue != kiln.StateAlarm {
		t.Errorf("updated alarm's state = %s, want ALARM kept", a.StateValue)
	}
	got, err := e.svc.GetAlarm(ctx, "high")
	if err != nil || got.Threshold != 200 {
		t.Errorf("GetAlarm = %+v, %v; want threshold 200", got, err)
	}
	h, err := e.svc.AlarmHistory(ctx, "high")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, it := range h {
		kinds = append(kinds, it.HistoryItemType)
	}
	if want := "ConfigurationUpdate StateUpdate ConfigurationUpdate"; strings.Join(kinds, " ") != want {
		t.Errorf("history = %v, want %s", kinds, want)
	}
	must(t)(e.svc.PutAlarm(ctx, alarm("low")))
	if list, err := e.svc.ListAlarms(ctx); err != nil || len(list) != 2 {
		t.Errorf("ListAlarms = %d, %v; want 2", len(list), err)
	}
	// A missing name among them deletes nothing.
	wantCode(t, "delete with a missing name", e.svc.DeleteAlarms(ctx, []string{"high", "nope"}), kiln.ENOTFOUND, "nope")
	if _, err := e.svc.GetAlarm(ctx, "high"); err != nil {
		t.Errorf("alarm deleted with a missing name beside it: %v", err)
	}
	if err := e.svc.DeleteAlarms(ctx, []string{"high", "low"}); err != nil {
		t.Fatal(err)
	}
	if list, err := e.svc.ListAlarms(ctx); err != nil || len(list) != 0 {
		t.Errorf("ListAlarms after delete = %d, %v; want 0", len(list), err)
	}
}

func testAlarmStates(t *testing.T, e *env) {
	must(t)(e.svc.PutAlarm(ctx, alarm("a")))
	wantCode(t, "bad state", e.svc.SetAlarmState(ctx, "a", "RED", "why", ""), kiln.EINVALID, "StateValue")
	wantCode(t, "no reason", e.svc.SetAlarmState(ctx, "a", kiln.StateOK, "", ""), kiln.EINVALID, "StateReason")
	wantCode(t, "bad data", e.svc.SetAlarmState(ctx, "a", kiln.StateOK, "why", "{not json"), kiln.EINVALID, "StateReasonData")
	wantCode(t, "missing alarm", e.svc.SetAlarmState(ctx, "nope", kiln.StateOK, "why", ""), kiln.ENOTFOUND, "nope")
	if a, _ := e.svc.GetAlarm(ctx, "a"); a.StateValue != kiln.StateInsufficientData {
		t.Errorf("state after refused changes = %s, want INSUFFICIENT_DATA", a.StateValue)
	}
	if err := e.svc.SetAlarmState(ctx, "a", kiln.StateOK, "fine", `{"x":1}`); err != nil {
		t.Fatal(err)
	}
	a, _ := e.svc.GetAlarm(ctx, "a")
	if a.StateValue != kiln.StateOK || a.StateReason != "fine" || a.StateReasonData != `{"x":1}` {
		t.Errorf("state = %+v", a.AlarmState)
	}
	// The engine's changes go through the same records.
	if _, err := e.rec.SaveAlarmState(ctx, "a", func(*kiln.Alarm) (kiln.AlarmState, bool) {
		return kiln.AlarmState{StateValue: kiln.StateAlarm, StateReason: "engine", StateUpdatedTimestamp: start.Add(time.Second)}, true
	}); err != nil {
		t.Fatal(err)
	}
	h, _ := e.svc.AlarmHistory(ctx, "")
	if n := len(h); n != 3 {
		t.Errorf("every alarm's history has %d entries, want 3 (created, OK, ALARM)", n)
	}
	if last := h[len(h)-1]; last.HistorySummary != "Alarm updated from OK to ALARM" {
		t.Errorf("last history entry %q", last.HistorySummary)
	}
}

func testAlarmRuleCycle(t *testing.T, e *env) {
	must(t)(e.svc.PutAlarm(ctx, alarm("m")))
	must(t)(e.svc.PutAlarm(ctx, &kiln.Alarm{AlarmName: "a", AlarmRule: `ALARM("m")`}))
	must(t)(e.svc.PutAlarm(ctx, &kiln.Alarm{AlarmName: "b", AlarmRule: `ALARM("a")`}))
	_, err := e.svc.PutAlarm(ctx, &kiln.Alarm{AlarmName: "a", AlarmRule: `ALARM("b")`})
	wantCode(t, "a cycle", err, kiln.EINVALID, "cycle", "a -> b -> a")
	if a, _ := e.svc.GetAlarm(ctx, "a"); a.AlarmRule != `ALARM("m")` {
		t.Errorf("rule after a refused cycle = %s", a.AlarmRule)
	}
}

// testInvalidInput: bad input gets an error naming the field, with nothing
// written.
func testInvalidInput(t *testing.T, e *env) {
	must(t)(e.svc.CreateModel(ctx, model("m")))
	must(t)(e.svc.CreateEndpointConfig(ctx, config("c", "m")))
	before := e.keys(t)
	noImage := model("x")
	noImage.PrimaryContainer.Image = " "
	badAlarm := alarm("a")
	badAlarm.Period = 0
	cases := []struct {
		name, field string
		call        func() error
	}{
		{"model name", "ModelName", func() error { _, err := e.svc.CreateModel(ctx, model("bad name")); return err }},
		{"model image", "PrimaryContainer.Image", func() error { _, err := e.svc.CreateModel(ctx, noImage); return err }},
		{"config name", "EndpointConfigName", func() error { _, err := e.svc.CreateEndpointConfig(ctx, config("-", "m")); return err }},
		{"config variants", "ProductionVariants", func() error { _, err := e.svc.CreateEndpointConfig(ctx, config("c2")); return err }},
		{"endpoint name", "EndpointName", func() error {
			_, err := e.svc.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: "", EndpointConfigName: "c"})
			return err
		}},
		{"endpoint config name", "EndpointConfigName", func() error {
			_, err := e.svc.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: "ep", EndpointConfigName: "a b"})
			return err
		}},
		{"alarm period", "Period", func() error { _, err := e.svc.PutAlarm(ctx, badAlarm); return err }},
		{"alarm name", "AlarmName", func() error { _, err := e.svc.PutAlarm(ctx, alarm("")); return err }},
		{"metric period", "Period", func() error {
			_, err := e.svc.GetMetricStatistics(ctx, kiln.MetricQuery{MetricName: "Invocations", Statistic: "Sum", Period: 0})
			return err
		}},
		{"metric data", "MetricName", func() error {
			return e.svc.PutMetricData(ctx, "Mine", []kiln.MetricDatum{{MetricName: "", Value: new(float64)}})
		}},
		{"tags", "Key", func() error {
			_, err := e.svc.AddTags(ctx, kiln.ARN("us-east-1", "000000000000", "model", "m"), []kiln.Tag{{Key: "", Value: "v"}})
			return err
		}},
	}
	for _, c := range cases {
		wantCode(t, c.name, c.call(), kiln.EINVALID, c.field)
	}
	if after := e.keys(t); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("keys after refused input:\n%v\nwant unchanged:\n%v", after, before)
	}
}

func testQuotas(t *testing.T, e *env) {
	e = newEnv(e.st, &service.Quotas{Models: 2, EndpointConfigs: 1, Endpoints: 1, Alarms: 1})
	must(t)(e.svc.CreateModel(ctx, model("m1")))
	must(t)(e.svc.CreateModel(ctx, model("m2")))
	_, err := e.svc.CreateModel(ctx, model("m3"))
	wantCode(t, "third model", err, kiln.ELIMIT, "2 models", "--quota models=N")
	// A name that exists is a conflict, as it would be below the limit.
	_, err = e.svc.CreateModel(ctx, model("m2"))
	wantCode(t, "existing model at the limit", err, kiln.ECONFLICT)
	must(t)(e.svc.CreateEndpointConfig(ctx, config("c1", "m1")))
	_, err = e.svc.CreateEndpointConfig(ctx, config("c2", "m1"))
	wantCode(t, "second config", err, kiln.ELIMIT, "endpoint-configs=N")
	must(t)(e.svc.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: "e1", EndpointConfigName: "c1"}))
	_, err = e.svc.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: "e2", EndpointConfigName: "c1"})
	wantCode(t, "second endpoint", err, kiln.ELIMIT, "endpoints=N")
	must(t)(e.svc.PutAlarm(ctx, alarm("a1")))
	_, err = e.svc.PutAlarm(ctx, alarm("a2"))
	wantCode(t, "second alarm", err, kiln.ELIMIT, "alarms=N")
	// Updating an alarm at the limit is no new alarm.
	must(t)(e.svc.PutAlarm(ctx, alarm("a1")))
	// Deleting makes room.
	if err := e.svc.DeleteModel(ctx, "m2"); err != nil {
		t.Fatal(err)
	}
	must(t)(e.svc.CreateModel(ctx, model("m3")))
}

func testRecordSize(t *testing.T, e *env) {
	e = newEnv(e.st, &service.Quotas{RecordBytes: 400})
	big := model("big")
	big.PrimaryContainer.Environment = map[string]string{"PAD": strings.Repeat("x", 400)}
	_, err := e.svc.CreateModel(ctx, big)
	wantCode(t, "big model", err, kiln.ELIMIT, "record-bytes=N")
	if _, err := e.svc.GetModel(ctx, "big"); kiln.ErrorCode(err) != kiln.ENOTFOUND {
		t.Errorf("a refused model was written: %v", err)
	}
	must(t)(e.svc.CreateModel(ctx, model("small")))
	q := service.DefaultQuotas()
	if err := q.Set("models=unlimited"); err != nil || q.Models != 0 {
		t.Errorf("Set models=unlimited: %v, %d", err, q.Models)
	}
	if err := q.Set("alarms=0"); err == nil {
		t.Error("Set alarms=0: got no error")
	}
}

func testPaging(t *testing.T, e *env) {
	for _, n := range []string{"c", "a", "b"} {
		must(t)(e.svc.CreateModel(ctx, model(n)))
	}
	names, err := e.svc.Names(ctx, kiln.KindModels)
	if err != nil {
		t.Fatal(err)
	}
	order := map[string]int64{}
	for _, en := range names {
		order[en.Name] = en.Order
	}
	if len(names) != 3 || !(order["c"] < order["a"] && order["a"] < order["b"]) {
		t.Errorf("Names = %+v; want c, a, b in creation order", names)
	}
	// An update keeps the order.
	must(t)(e.svc.AddTags(ctx, kiln.ARN("us-east-1", "000000000000", "model", "c"), []kiln.Tag{{Key: "k", Value: "v"}}))
	names, _ = e.svc.Names(ctx, kiln.KindModels)
	for _, en := range names {
		if en.Order != order[en.Name] {
			t.Errorf("%s's order changed with its tags: %d, was %d", en.Name, en.Order, order[en.Name])
		}
	}
	ms, err := e.svc.ModelsNamed(ctx, []string{"b", "gone", "c"})
	if err != nil || len(ms) != 2 || ms[0].ModelName != "b" || ms[1].ModelName != "c" {
		t.Errorf("ModelsNamed(b, gone, c) = %v, %v; want b, c", ms, err)
	}
	if _, err := e.svc.Names(ctx, "widgets"); err == nil {
		t.Error("Names of an unknown kind: got no error")
	}
	for _, kind := range []string{kiln.KindEndpointConfigs, kiln.KindEndpoints, kiln.KindAlarms} {
		if n, err := e.svc.Names(ctx, kind); err != nil || len(n) != 0 {
			t.Errorf("Names(%s) = %v, %v; want none", kind, n, err)
		}
	}
}

func testTags(t *testing.T, e *env) {
	e.endpoint(t, "ep")
	must(t)(e.svc.PutAlarm(ctx, alarm("al")))
	arns := []string{
		kiln.ARN("us-east-1", "000000000000", "model", "ep-m"),
		kiln.ARN("us-east-1", "000000000000", "endpoint-config", "ep-c"),
		kiln.ARN("us-east-1", "000000000000", "endpoint", "ep"),
		"arn:aws:cloudwatch:us-east-1:000000000000:alarm:al",
	}
	for _, arn := range arns {
		tags, err := e.svc.AddTags(ctx, arn, []kiln.Tag{{Key: "team", Value: "a"}, {Key: "env", Value: "dev"}})
		if err != nil || len(tags) != 2 {
			t.Errorf("AddTags %s = %v, %v", arn, tags, err)
			continue
		}
		must(t)(e.svc.AddTags(ctx, arn, []kiln.Tag{{Key: "team", Value: "b"}}))
		if err := e.svc.DeleteTags(ctx, arn, []string{"env"}); err != nil {
			t.Error(err)
		}
		tags, err = e.svc.ListTags(ctx, arn)
		if err != nil || len(tags) != 1 || tags[0] != (kiln.Tag{Key: "team", Value: "b"}) {
			t.Errorf("ListTags %s = %v, %v; want team=b", arn, tags, err)
		}
	}
	if ep, _ := e.svc.GetEndpoint(ctx, "ep"); len(ep.Tags) != 1 {
		t.Errorf("endpoint record's tags = %v", ep.Tags)
	}
}

func testTagsByARN(t *testing.T, e *env) {
	must(t)(e.svc.CreateModel(ctx, model("Mixed")))
	// ARNs carry lower-cased names.
	if _, err := e.svc.ListTags(ctx, kiln.ARN("us-east-1", "000000000000", "model", "Mixed")); err != nil {
		t.Errorf("ListTags by the lower-cased ARN: %v", err)
	}
	_, err := e.svc.ListTags(ctx, kiln.ARN("eu-west-1", "000000000000", "model", "Mixed"))
	wantCode(t, "other region", err, kiln.ENOTFOUND, "us-east-1")
	_, err = e.svc.ListTags(ctx, kiln.ARN("us-east-1", "000000000000", "model", "nope"))
	wantCode(t, "missing model", err, kiln.ENOTFOUND)
	_, err = e.svc.ListTags(ctx, "not an arn")
	if err == nil {
		t.Error("ListTags of a malformed ARN: got no error")
	}
	must(t)(e.svc.CreateModel(ctx, model("MIXED")))
	_, err = e.svc.AddTags(ctx, kiln.ARN("us-east-1", "000000000000", "model", "mixed"), []kiln.Tag{{Key: "k", Value: "v"}})
	wantCode(t, "two models of one ARN", err, kiln.EINVALID, "differ only in case")
}

// testConcurrentCreates: of racing creations of one name, exactly one wins;
// the others are told it exists.
func testConcurrentCreates(t *testing.T, e *env) {
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = e.svc.CreateModel(ctx, model("m")) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case kiln.ErrorCode(err) != kiln.ECONFLICT:
			t.Errorf("a losing creation: %v, want a conflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d creations won, want 1", won)
	}
}

// testConcurrentChanges: changes that race on one record (compare-and-swap
// on its revision) all land, whoever writes between them.
func testConcurrentChanges(t *testing.T, e *env) {
	e.endpoint(t, "ep")
	must(t)(e.svc.PutAlarm(ctx, alarm("al")))
	arn := kiln.ARN("us-east-1", "000000000000", "endpoint", "ep")
	const n = 8
	var wg sync.WaitGroup
	errc := make(chan error, 3*n)
	for i := range n {
		// Clients tag the endpoint while the controller writes it.
		wg.Go(func() {
			_, err := e.svc.AddTags(ctx, arn, []kiln.Tag{{Key: fmt.Sprintf("k%d", i), Value: "v"}})
			errc <- err
		})
		wg.Go(func() {
			for {
				ep, rev, err := e.rec.Endpoint(ctx, "ep")
				if err != nil {
					errc <- err
					return
				}
				ep.FailureReason = fmt.Sprintf("write %d", i)
				_, err = e.rec.PutEndpoint(ctx, ep, rev)
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				errc <- err
				return
			}
		})
		// The engine and clients change the alarm's state while a client
		// updates it.
		wg.Go(func() {
			if i%2 == 0 {
				errc <- e.svc.SetAlarmState(ctx, "al", kiln.StateOK, fmt.Sprintf("set %d", i), "")
				return
			}
			upd := alarm("al")
			upd.Threshold = float64(i)
			_, err := e.svc.PutAlarm(ctx, upd)
			errc <- err
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
	tags, err := e.svc.ListTags(ctx, arn)
	if err != nil || len(tags) != n {
		t.Errorf("tags after %d racing additions: %v, %v", n, tags, err)
	}
	a, err := e.svc.GetAlarm(ctx, "al")
	if err != nil || a.StateValue != kiln.StateOK {
		t.Errorf("alarm after racing changes: %+v, %v; want a set state kept by every update", a, err)
	}
	h, _ := e.svc.AlarmHistory(ctx, "al")
	if len(h) != 1+n {
		t.Errorf("alarm history has %d entries, want %d: one per change", len(h), 1+n)
	}
}

// testBadRecordsSetAside: a record that does not decode, or an endpoint
// that is invalid, is set aside by the loops that read every record; the
// others are read.
func testBadRecords(t *testing.T, e *env) {
	e.endpoint(t, "good")
	must(t)(e.svc.PutAlarm(ctx, alarm("good")))
	for _, key := range []string{service.EndpointsPrefix + "garbled", service.AlarmsPrefix + "garbled"} {
		if _, err := e.st.Put(ctx, key, []byte("{not json"), store.Any); err != nil {
			t.Fatal(err)
		}
	}
	// An endpoint whose name does not match its key decodes, but is invalid.
	good, err := e.st.Get(ctx, service.EndpointsPrefix+"good")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Put(ctx, service.EndpointsPrefix+"other", good.Value, store.Any); err != nil {
		t.Fatal(err)
	}
	eps, err := e.rec.Endpoints(ctx)
	if err != nil || len(eps) != 1 || eps[0].EndpointName != "good" {
		t.Errorf("Records.Endpoints = %v, %v; want good alone", eps, err)
	}
	as, err := e.rec.Alarms(ctx)
	if err != nil || len(as) != 1 || as[0].AlarmName != "good" {
		t.Errorf("Records.Alarms = %v, %v; want good alone", as, err)
	}
	// Read with mark, the invalid one is marked Failed with the reason, once.
	other, err := e.st.Get(ctx, service.EndpointsPrefix+"other")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.rec.ReadEndpoint(ctx, other, true); ok {
		t.Error("ReadEndpoint of a record under another name's key: ok")
	}
	marked, err := e.st.Get(ctx, service.EndpointsPrefix+"other")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.rec.ReadEndpoint(ctx, marked, true); ok {
		t.Error("ReadEndpoint of the marked record: ok")
	}
	again, _ := e.st.Get(ctx, service.EndpointsPrefix+"other")
	if again.ModRevision != marked.ModRevision {
		t.Error("a marked record was marked again")
	}
	var ep kiln.Endpoint
	if err := json.Unmarshal(marked.Value, &ep); err != nil {
		t.Fatal(err)
	}
	if ep.EndpointStatus != kiln.StatusFailed || !strings.Contains(ep.FailureReason, "does not match its key") {
		t.Errorf("marked record: status %s, reason %q", ep.EndpointStatus, ep.FailureReason)
	}
	// Paging leaves out what no longer exists.
	if got, err := e.svc.EndpointsNamed(ctx, []string{"good", "gone"}); err != nil || len(got) != 1 {
		t.Errorf("EndpointsNamed(good, gone) = %v, %v", got, err)
	}
}
