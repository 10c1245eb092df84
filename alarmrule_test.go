package kiln

import (
	"strings"
	"testing"
)

func TestAlarmRule(t *testing.T) {
	states := map[string]string{"a": StateAlarm, "b": StateOK, "c d": StateInsufficientData, "x": StateAlarm}
	lookup := func(n string) (string, bool) { s, ok := states[n]; return s, ok }
	for _, tt := range []struct {
		rule     string
		want     bool
		children string
	}{
		{`ALARM(a)`, true, "a"},
		{`ALARM("a") AND OK(b)`, true, "a,b"},
		{`ALARM(a) AND ALARM(b)`, false, "a,b"},
		{`ALARM(b) OR INSUFFICIENT_DATA("c d")`, true, "b,c d"},
		{`NOT ALARM(a) OR OK(b) AND ALARM(x)`, true, "a,b,x"},    // NOT, then AND, then OR
		{`NOT (ALARM(a) OR OK(b)) AND ALARM(x)`, false, "a,b,x"}, // parentheses
		{`ALARM(arn:aws:cloudwatch:us-east-1:000000000000:alarm:x)`, true, "x"},
		{`ALARM(missing)`, false, "missing"},
		{`TRUE AND NOT FALSE`, true, ""},
		{`(ALARM(a) OR ALARM(a))`, true, "a"},
	} {
		r, err := ParseAlarmRule(tt.rule)
		if err != nil {
			t.Errorf("%s: %v", tt.rule, err)
			continue
		}
		if got := r.Eval(lookup); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.rule, got, tt.want)
		}
		if got := strings.Join(r.Children(), ","); got != tt.children {
			t.Errorf("%s: children %q, want %q", tt.rule, got, tt.children)
		}
	}
	for rule, msg := range map[string]string{
		``:                        "required",
		`ALARM(a`:                 ") is missing",
		`ALARM a`:                 "parentheses",
		`ALARM(a) AND`:            "ends where",
		`ALARM(a) XOR ALARM(b)`:   "unexpected",
		`alarm(a)`:                "expected ALARM",
		`ALARM("a)`:               "closing",
		`ALARM()`:                 "1 to 255",
		`AT_LEAST(2, ALARM, (a))`: "not supported",
		strings.Repeat("TRUE OR ", 2000) + "TRUE": "at most",
	} {
		if _, err := ParseAlarmRule(rule); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%.40q: %v, want an error saying %q", rule, err, msg)
		}
	}
}

func FuzzAlarmRule(f *testing.F) {
	for _, s := range []string{`ALARM(a) AND (OK("b c") OR NOT INSUFFICIENT_DATA(d))`, `TRUE`, `((`, `NOT NOT NOT FALSE`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseAlarmRule(s)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("%q: %v is not an EINVALID", s, err)
			}
			return
		}
		r.Eval(func(string) (string, bool) { return StateAlarm, true })
		r.Children()
	})
}
