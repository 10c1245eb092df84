package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/store"
)

func alarmNotFound(name string) string {
	return fmt.Sprintf("Could not find alarm %q.", name)
}

func (s *Service) PutAlarm(ctx context.Context, a *kiln.Alarm) (*kiln.Alarm, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	now := s.clk.Now().UTC()
	if a.AlarmRule != "" {
		if err := s.checkRuleCycle(ctx, a); err != nil {
			return nil, err
		}
	}
	a.AlarmArn = fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", s.region, s.account, a.AlarmName)
	a.AlarmConfigurationUpdatedTimestamp = now
	for {
		old, rev, err := getJSON[kiln.Alarm](ctx, s.st, alarmsPrefix+a.AlarmName, "")
		summary := fmt.Sprintf("Alarm %q updated", a.AlarmName)
		switch {
		case kiln.ErrorCode(err) == kiln.ENOTFOUND:
			// CloudWatch: a new alarm starts in INSUFFICIENT_DATA.
			a.AlarmState = kiln.AlarmState{
				StateValue: kiln.StateInsufficientData, StateReason: "Unchecked: Initial alarm creation",
				StateUpdatedTimestamp: now, StateTransitionedTimestamp: now,
			}
			summary = fmt.Sprintf("Alarm %q created", a.AlarmName)
			if err := s.checkCount(ctx, alarmsPrefix, a.AlarmName, s.quotas.Alarms, "alarms", "alarms"); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		default:
			// Updating an alarm keeps its state.
			a.AlarmState = old.AlarmState
		}
		if err := s.checkSize("alarm", encodedSize(a)); err != nil {
			return nil, err
		}
		_, err = putJSON(ctx, s.st, alarmsPrefix+a.AlarmName, a, rev)
		if errors.Is(err, store.ErrConflict) {
			continue // the engine wrote a state change meanwhile
		}
		if err != nil {
			return nil, err
		}
		if err := s.rec.appendAlarmHistory(ctx, kiln.AlarmHistoryItem{AlarmName: a.AlarmName, Timestamp: now, HistoryItemType: "ConfigurationUpdate", HistorySummary: summary}); err != nil {
			return nil, err
		}
		return a, nil
	}
}

func (s *Service) GetAlarm(ctx context.Context, name string) (*kiln.Alarm, error) {
	a, _, err := getJSON[kiln.Alarm](ctx, s.st, alarmsPrefix+name, alarmNotFound(name))
	return &a, err
}

func (s *Service) ListAlarms(ctx context.Context) ([]kiln.Alarm, error) {
	return listJSON[kiln.Alarm](ctx, s.st, alarmsPrefix)
}

func (s *Service) DeleteAlarms(ctx context.Context, names []string) error {
	// Check all first, so that a bad name deletes nothing.
	for _, n := range names {
		if _, err := s.GetAlarm(ctx, n); err != nil {
			return err
		}
	}
	for _, n := range names {
		if err := s.delete(ctx, alarmsPrefix+n, alarmNotFound(n)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) SetAlarmState(ctx context.Context, name, state, reason, data string) error {
	switch state {
	case kiln.StateOK, kiln.StateAlarm, kiln.StateInsufficientData:
	default:
		return kiln.Errorf(kiln.EINVALID, "StateValue %q is not one of OK, ALARM, INSUFFICIENT_DATA.", state)
	}
	if reason == "" || len(reason) > 1023 {
		return kiln.Errorf(kiln.EINVALID, "StateReason must be 1 to 1023 characters.")
	}
	if data != "" && !jsonValid(data) {
		return kiln.Errorf(kiln.EINVALID, "StateReasonData must be JSON.")
	}
	st, err := s.rec.SaveAlarmState(ctx, name, func(a *kiln.Alarm) (kiln.AlarmState, bool) {
		now := s.clk.Now().UTC()
		ns := kiln.AlarmState{StateValue: state, StateReason: reason, StateReasonData: data, StateUpdatedTimestamp: now, StateTransitionedTimestamp: a.StateTransitionedTimestamp}
		if state != a.StateValue {
			ns.StateTransitionedTimestamp = now
		}
		return ns, true
	})
	if err != nil {
		return err
	}
	if s.alarms != nil {
		s.alarms.SetState(name, st)
	}
	return nil
}

// SaveAlarmState changes an alarm's state with compare-and-swap and records
// the change in its history. change returns the new state, or false to keep
// the old one. A missing alarm is an ENOTFOUND.
func (r *Records) SaveAlarmState(ctx context.Context, name string, change func(*kiln.Alarm) (kiln.AlarmState, bool)) (kiln.AlarmState, error) {
	for {
		a, rev, err := getJSON[kiln.Alarm](ctx, r.st, alarmsPrefix+name, alarmNotFound(name))
		if err != nil {
			return kiln.AlarmState{}, err
		}
		ns, ok := change(&a)
		if !ok {
			return a.AlarmState, nil
		}
		old := a.StateValue
		a.AlarmState = ns
		if _, err := putJSON(ctx, r.st, alarmsPrefix+name, a, rev); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return kiln.AlarmState{}, err
		}
		item := kiln.AlarmHistoryItem{
			AlarmName: name, Timestamp: ns.StateUpdatedTimestamp, HistoryItemType: "StateUpdate",
			HistorySummary: fmt.Sprintf("Alarm updated from %s to %s", old, ns.StateValue),
			HistoryData:    stateHistoryData(old, ns),
		}
		return ns, r.appendAlarmHistory(ctx, item)
	}
}

func (s *Service) AlarmHistory(ctx context.Context, name string) ([]kiln.AlarmHistoryItem, error) {
	if name == "" {
		return listJSON[kiln.AlarmHistoryItem](ctx, s.st, alarmHistoryPrefix)
	}
	return listJSON[kiln.AlarmHistoryItem](ctx, s.st, alarmHistoryPrefix+name+"/")
}

func (r *Records) appendAlarmHistory(ctx context.Context, item kiln.AlarmHistoryItem) error {
	_, err := putJSON(ctx, r.st, historyKey(&r.seq, alarmHistoryPrefix, item.AlarmName, item.Timestamp), item, 0)
	return err
}

// checkRuleCycle refuses a composite alarm whose rule would lead, through
// other composite alarms, back to itself.
func (s *Service) checkRuleCycle(ctx context.Context, a *kiln.Alarm) error {
	alarms, err := s.rec.Alarms(ctx)
	if err != nil {
		return err
	}
	rules := map[string]string{}
	for _, o := range alarms {
		rules[o.AlarmName] = o.AlarmRule
	}
	rules[a.AlarmName] = a.AlarmRule
	seen := map[string]bool{}
	var path []string
	var visit func(name string) bool
	visit = func(name string) bool {
		if name == a.AlarmName && len(path) > 0 {
			return true
		}
		if seen[name] {
			return false
		}
		seen[name] = true
		r, err := kiln.ParseAlarmRule(rules[name])
		if err != nil {
			return false // a metric alarm, or none of that name
		}
		for _, c := range r.Children() {
			path = append(path, c)
			if visit(c) {
				return true
			}
			path = path[:len(path)-1]
		}
		return false
	}
	if visit(a.AlarmName) {
		return kiln.Errorf(kiln.EINVALID, "AlarmRule would make a cycle: %s -> %s.", a.AlarmName, strings.Join(path, " -> "))
	}
	return nil
}
