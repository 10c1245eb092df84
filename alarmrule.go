package kiln

import (
	"fmt"
	"strings"
	"unicode"
)

// MaxAlarmRuleLength is CloudWatch's limit on a composite alarm's rule.
const MaxAlarmRuleLength = 10240

// AlarmRule is a composite alarm's rule, parsed: CloudWatch's expressions
// of ALARM(name), OK(name), INSUFFICIENT_DATA(name), TRUE and FALSE, with
// NOT, AND, OR (in that order of precedence) and parentheses. A name may
// be quoted ("...") and may be an alarm's ARN.
type AlarmRule struct {
	op       string // "state", "const", "not", "and", "or"
	state    string // for "state": the state tested
	name     string // for "state": the alarm
	value    bool   // for "const"
	operands []*AlarmRule
}

// ParseAlarmRule parses a composite alarm's rule, or says where it is
// wrong.
func ParseAlarmRule(s string) (*AlarmRule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, Errorf(EINVALID, "AlarmRule is required.")
	}
	if len(s) > MaxAlarmRuleLength {
		return nil, Errorf(EINVALID, "AlarmRule must be at most %d characters.", MaxAlarmRuleLength)
	}
	p := &ruleParser{s: s}
	r, err := p.or()
	if err == nil {
		if p.skip(); p.i < len(s) {
			err = p.errorf("unexpected %q", p.rest())
		}
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Children returns the alarms the rule names, each once, in order.
func (r *AlarmRule) Children() []string {
	var out []string
	seen := map[string]bool{}
	var walk func(*AlarmRule)
	walk = func(r *AlarmRule) {
		if r.op == "state" && !seen[r.name] {
			seen[r.name] = true
			out = append(out, r.name)
		}
		for _, o := range r.operands {
			walk(o)
		}
	}
	walk(r)
	return out
}

// Eval evaluates the rule given each child's state; a child state does not
// know is in none of the three states.
func (r *AlarmRule) Eval(state func(name string) (string, bool)) bool {
	switch r.op {
	case "const":
		return r.value
	case "state":
		st, ok := state(r.name)
		return ok && st == r.state
	case "not":
		return !r.operands[0].Eval(state)
	case "and":
		for _, o := range r.operands {
			if !o.Eval(state) {
				return false
			}
		}
		return true
	default: // or
		for _, o := range r.operands {
			if o.Eval(state) {
				return true
			}
		}
		return false
	}
}

type ruleParser struct {
	s string
	i int
}

func (p *ruleParser) errorf(format string, args ...any) error {
	return Errorf(EINVALID, "AlarmRule, at character %d: %s.", p.i+1, fmt.Sprintf(format, args...))
}

func (p *ruleParser) rest() string {
	r := p.s[p.i:]
	if len(r) > 20 {
		r = r[:20] + "..."
	}
	return r
}

func (p *ruleParser) skip() {
	for p.i < len(p.s) && unicode.IsSpace(rune(p.s[p.i])) {
		p.i++
	}
}

// word reads a keyword if one is next (case-sensitive, as CloudWatch's).
func (p *ruleParser) word(w string) bool {
	p.skip()
	if !strings.HasPrefix(p.s[p.i:], w) {
		return false
	}
	end := p.i + len(w)
	if end < len(p.s) && (isRuleNameChar(p.s[end]) && p.s[end] != '(') {
		return false
	}
	p.i = end
	return true
}

func isRuleNameChar(c byte) bool {
	return c != '(' && c != ')' && c != '"' && !unicode.IsSpace(rune(c))
}

func (p *ruleParser) or() (*AlarmRule, error) {
	return p.chain("or", "OR", p.and)
}

func (p *ruleParser) and() (*AlarmRule, error) {
	return p.chain("and", "AND", p.not)
}

func (p *ruleParser) chain(op, word string, next func() (*AlarmRule, error)) (*AlarmRule, error) {
	first, err := next()
	if err != nil {
		return nil, err
	}
	operands := []*AlarmRule{first}
	for p.word(word) {
		o, err := next()
		if err != nil {
			return nil, err
		}
		operands = append(operands, o)
	}
	if len(operands) == 1 {
		return first, nil
	}
	return &AlarmRule{op: op, operands: operands}, nil
}

func (p *ruleParser) not() (*AlarmRule, error) {
	if p.word("NOT") {
		o, err := p.not()
		if err != nil {
			return nil, err
		}
		return &AlarmRule{op: "not", operands: []*AlarmRule{o}}, nil
	}
	return p.atom()
}

func (p *ruleParser) atom() (*AlarmRule, error) {
	p.skip()
	switch {
	case p.i >= len(p.s):
		return nil, p.errorf("the rule ends where an expression should be")
	case p.s[p.i] == '(':
		p.i++
		r, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.skip(); p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, p.errorf("a ) is missing")
		}
		p.i++
		return r, nil
	case p.word("TRUE"):
		return &AlarmRule{op: "const", value: true}, nil
	case p.word("FALSE"):
		return &AlarmRule{op: "const", value: false}, nil
	}
	for _, st := range []string{StateAlarm, StateOK, StateInsufficientData} {
		if !p.word(st) {
			continue
		}
		if p.skip(); p.i >= len(p.s) || p.s[p.i] != '(' {
			return nil, p.errorf("%s takes an alarm name in parentheses", st)
		}
		p.i++
		name, err := p.name()
		if err != nil {
			return nil, err
		}
		if p.skip(); p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, p.errorf("a ) is missing after the alarm name")
		}
		p.i++
		return &AlarmRule{op: "state", state: st, name: name}, nil
	}
	if p.word("AT_LEAST") {
		return nil, p.errorf("AT_LEAST is not supported by Kiln; combine ALARM() with AND and OR")
	}
	return nil, p.errorf("expected ALARM(name), OK(name), INSUFFICIENT_DATA(name), TRUE, FALSE, NOT or (, got %q", p.rest())
}

// name reads an alarm name, quoted or not; an alarm ARN names the alarm.
func (p *ruleParser) name() (string, error) {
	p.skip()
	var name string
	if p.i < len(p.s) && p.s[p.i] == '"' {
		end := strings.IndexByte(p.s[p.i+1:], '"')
		if end < 0 {
			return "", p.errorf("a closing \" is missing")
		}
		name = p.s[p.i+1 : p.i+1+end]
		p.i += end + 2
	} else {
		start := p.i
		for p.i < len(p.s) && isRuleNameChar(p.s[p.i]) {
			p.i++
		}
		name = p.s[start:p.i]
	}
	if kind, _, _, n, err := ParseARN(name); err == nil && kind == KindAlarm {
		name = n
	}
	if name == "" || len(name) > MaxAlarmNameLength {
		return "", p.errorf("an alarm name must be 1 to %d characters", MaxAlarmNameLength)
	}
	return name, nil
}
