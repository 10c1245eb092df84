package main

import (
	"strings"
	"testing"
	"time"
)

// An apply file asks for evidence in its DeploymentConfig.
func TestApplyFileMinRequests(t *testing.T) {
	f, err := parseApplyFile("fraud.yaml", []byte(`endpoints:
  - EndpointName: fraud
    EndpointConfigName: fraud-v2
    DeploymentConfig:
      BlueGreenUpdatePolicy:
        TrafficRoutingConfiguration: {Type: ALL_AT_ONCE, WaitIntervalInSeconds: 60}
      MinRequestsPerBake: 20
      EvidenceTimeoutInSeconds: 300
`))
	if err != nil {
		t.Fatal(err)
	}
	dc := f.Endpoints[0].DeploymentConfig
	if dc.MinRequestsPerBake != 20 || dc.EvidenceTimeoutInSeconds != 300 {
		t.Fatalf("got MinRequestsPerBake %d, EvidenceTimeoutInSeconds %d; want 20 and 300", dc.MinRequestsPerBake, dc.EvidenceTimeoutInSeconds)
	}
}

// kiln deploy's evidence flags, and its default: 1 request per bake when
// alarms watch the bakes.
func TestDeployEvidenceFlags(t *testing.T) {
	for _, tt := range []struct {
		name        string
		f           deployFlags
		wantMin     int
		wantTimeout int
		wantErr     string
	}{
		{name: "no alarm: off", f: deployFlags{minRequests: -1}},
		{name: "alarm: 1", f: deployFlags{minRequests: -1, alarms: []string{"a"}}, wantMin: 1},
		{name: "alarm, turned off", f: deployFlags{minRequests: 0, alarms: []string{"a"}}},
		{name: "given", f: deployFlags{minRequests: 5, evidenceTimeout: time.Minute}, wantMin: 5, wantTimeout: 60},
		{name: "negative", f: deployFlags{minRequests: -2}, wantErr: "--min-requests -2"},
		{name: "timeout without requests", f: deployFlags{minRequests: 0, evidenceTimeout: time.Minute}, wantErr: "--evidence-timeout applies only with --min-requests"},
		{name: "fractional timeout", f: deployFlags{minRequests: 1, evidenceTimeout: 1500 * time.Millisecond}, wantErr: "--evidence-timeout 1.5s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dc, err := tt.f.deploymentConfig()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if dc.MinRequestsPerBake != tt.wantMin || dc.EvidenceTimeoutInSeconds != tt.wantTimeout {
				t.Fatalf("got %d, %d; want %d, %d", dc.MinRequestsPerBake, dc.EvidenceTimeoutInSeconds, tt.wantMin, tt.wantTimeout)
			}
		})
	}
}
