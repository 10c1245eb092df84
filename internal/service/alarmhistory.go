package service

import (
	"encoding/json"

	"github.com/kiln-serve/kiln"
)

func jsonValid(s string) bool { return json.Valid([]byte(s)) }

// stateHistoryData is CloudWatch's HistoryData for a state change.
func stateHistoryData(old string, ns kiln.AlarmState) string {
	type state struct {
		StateValue      string `json:"stateValue"`
		StateReason     string `json:"stateReason,omitempty"`
		StateReasonData any    `json:"stateReasonData,omitempty"`
	}
	var data any
	if ns.StateReasonData != "" {
		data = json.RawMessage(ns.StateReasonData)
	}
	b, _ := json.Marshal(map[string]any{
		"version":  "1.0",
		"oldState": state{StateValue: old},
		"newState": state{StateValue: ns.StateValue, StateReason: ns.StateReason, StateReasonData: data},
	})
	return string(b)
}
