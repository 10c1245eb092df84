package main

import (
	"strings"
	"testing"
)

// A mistake in an apply file names the file, the line, the resource and,
// when one is close, the field meant.
func TestApplyFileErrors(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string
	}{
		{"unknown key", `models:
  - ModelName: ok-v1
    PrimaryContainer:
      Image: kiln demo-model
  - ModelName: demo-v1
    PrimaryContainer:
      Imag: kiln demo-model
`, []string{`demo.yaml:7: models[1] "demo-v1": unknown field "Imag" (did you mean "Image"?)`}},
		// The same key in an earlier resource: the line is the one in the
		// resource at fault.
		{"key in its resource", `endpointConfigs:
  - EndpointConfigName: a
    ProductionVariants:
      - {VariantName: AllTraffic, ModelName: a, InitialInstanceCount: 1}
  - EndpointConfigName: b
    ProductionVariants:
      - {VariantName: AllTraffic, ModelName: b, InitialInstancCount: 1}
`, []string{`demo.yaml:7: endpointConfigs[1] "b": unknown field "InitialInstancCount" (did you mean "InitialInstanceCount"?)`}},
		{"unknown section", "modles:\n  - ModelName: x\n", []string{`demo.yaml:1: unknown section "modles"`, `did you mean "models"?`}},
		{"wrong type", "alarms:\n  - AlarmName: a\n    Period: often\n", []string{`demo.yaml:3: alarms[0] "a": Period must be int, not string`}},
		{"JSON", `{"endpoints": [{"EndpointName": "e", "EndpointConfigName": "c", "Tagz": []}]}`, []string{`demo.yaml:1: endpoints[0] "e": unknown field "Tagz" (did you mean "Tags"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseApplyFile("demo.yaml", []byte(tt.data))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	f, err := parseApplyFile("demo.yaml", []byte("models:\n  - ModelName: m\n    PrimaryContainer: {Image: kiln demo-model}\nendpoints:\n  - {EndpointName: e, EndpointConfigName: c}\n"))
	if err != nil || len(f.Models) != 1 || f.Models[0].PrimaryContainer.Image != "kiln demo-model" || len(f.Endpoints) != 1 || f.Endpoints[0].EndpointConfigName != "c" {
		t.Errorf("a good file: %+v, %v", f, err)
	}
}
