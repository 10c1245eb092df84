package metrics

import (
	"strings"
	"testing"

	"github.com/kiln-serve/kiln"
)

func TestParseStatistic(t *testing.T) {
	tests := []struct {
		in      string
		want    Statistic
		wantErr bool
	}{
		{in: "SampleCount", want: Statistic{Kind: SampleCount}},
		{in: "Sum", want: Statistic{Kind: Sum}},
		{in: "Average", want: Statistic{Kind: Average}},
		{in: "Minimum", want: Statistic{Kind: Minimum}},
		{in: "Maximum", want: Statistic{Kind: Maximum}},
		{in: "p99", want: Statistic{Kind: Percentile, Percentile: 99}},
		{in: "p99.9", want: Statistic{Kind: Percentile, Percentile: 99.9}},
		{in: "p50", want: Statistic{Kind: Percentile, Percentile: 50}},
		{in: "p0", want: Statistic{Kind: Percentile, Percentile: 0}},
		{in: "p100", want: Statistic{Kind: Percentile, Percentile: 100}},
		{in: "p99.9999999999", want: Statistic{Kind: Percentile, Percentile: 99.9999999999}},
		{in: "", wantErr: true},
		{in: "sum", wantErr: true},
		{in: "Avg", wantErr: true},
		{in: "p", wantErr: true},
		{in: "p101", wantErr: true},
		{in: "p100.0", wantErr: true},
		{in: "p-1", wantErr: true},
		{in: "p99.", wantErr: true},
		{in: "P99", wantErr: true},
		{in: "p99.99999999999", wantErr: true},
		{in: "tm99", wantErr: true},
		{in: "p1e2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseStatistic(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseStatistic(%q) = %+v, want an error", tt.in, got)
				}
				if kiln.ErrorCode(err) != kiln.EINVALID || !strings.Contains(err.Error(), "\""+tt.in+"\"") {
					t.Errorf("error %q (code %s) does not name %q as invalid", err, kiln.ErrorCode(err), tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStatistic(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseStatistic(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func FuzzParseStatistic(f *testing.F) {
	for _, s := range []string{"SampleCount", "Sum", "Average", "Minimum", "Maximum", "p99", "p99.9", "p0", "p100", "p05.50", "p", "x", "p1e3", "p+1", "p٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStatistic(s)
		if err != nil {
			if st != (Statistic{}) {
				t.Fatalf("ParseStatistic(%q) returned %+v with error %v", s, st, err)
			}
			return
		}
		switch st.Kind {
		case SampleCount, Sum, Average, Minimum, Maximum:
			if st.Percentile != 0 || st.String() != s {
				t.Fatalf("ParseStatistic(%q) = %+v (String %q)", s, st, st.String())
			}
		case Percentile:
			if !(st.Percentile >= 0 && st.Percentile <= 100) {
				t.Fatalf("ParseStatistic(%q): percentile %v out of range", s, st.Percentile)
			}
		default:
			t.Fatalf("ParseStatistic(%q): kind %v", s, st.Kind)
		}
		again, err := ParseStatistic(st.String())
		if err != nil || again != st {
			t.Fatalf("ParseStatistic(%q) = %+v; its String %q parses to %+v, %v", s, st, st.String(), again, err)
		}
	})
}
