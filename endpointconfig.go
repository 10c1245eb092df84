package kiln

import (
	"time"
)

// EndpointConfig is an immutable description of what an endpoint runs: one
// to ten production variants, each a model on some instances with a weight.
type EndpointConfig struct {
	EndpointConfigName string              `json:"EndpointConfigName"`
	EndpointConfigArn  string              `json:"EndpointConfigArn,omitempty"`
	ProductionVariants []ProductionVariant `json:"ProductionVariants"`
	Tags               []Tag               `json:"Tags,omitempty"`
	CreationTime       time.Time           `json:"CreationTime"`
}

// ProductionVariant is one model behind an endpoint.
type ProductionVariant struct {
	VariantName          string `json:"VariantName"`
	ModelName            string `json:"ModelName"`
	InitialInstanceCount int    `json:"InitialInstanceCount"`
	InstanceType         string `json:"InstanceType,omitempty"`
	// InitialVariantWeight is the variant's share of traffic relative to the
	// others; nil means 1.0.
	InitialVariantWeight *float64 `json:"InitialVariantWeight,omitempty"`
}

// MaxInstancesPerVariant bounds InitialInstanceCount: every instance is a
// local process, so the limit is about one machine, not about billing.
const MaxInstancesPerVariant = 100

// Weight returns the variant's initial weight with its default applied.
func (v ProductionVariant) Weight() float64 {
	if v.InitialVariantWeight == nil {
		return 1.0
	}
	return *v.InitialVariantWeight
}

// Validate checks an endpoint config as submitted; it does not check that the
// models exist, which needs the store.
func (c *EndpointConfig) Validate() error {
	if err := ValidateName("EndpointConfigName", c.EndpointConfigName); err != nil {
		return err
	}
	n := len(c.ProductionVariants)
	if n < 1 || n > MaxVariants {
		return Errorf(EINVALID, "ProductionVariants must have between 1 and %d entries, got %d.", MaxVariants, n)
	}
	seen := map[string]bool{}
	total := 0.0
	for i, v := range c.ProductionVariants {
		if err := ValidateName(sprintf("ProductionVariants[%d].VariantName", i), v.VariantName); err != nil {
			return err
		}
		if seen[v.VariantName] {
			return Errorf(EINVALID, "ProductionVariants has the variant name %q more than once.", v.VariantName)
		}
		seen[v.VariantName] = true
		if err := ValidateModelName(sprintf("ProductionVariants[%d].ModelName", i), v.ModelName); err != nil {
			return err
		}
		if v.InitialInstanceCount < 1 || v.InitialInstanceCount > MaxInstancesPerVariant {
			return Errorf(EINVALID, "ProductionVariants[%d].InitialInstanceCount must be between 1 and %d, got %d.", i, MaxInstancesPerVariant, v.InitialInstanceCount)
		}
		if v.InstanceType != "" && !instanceTypeRE.MatchString(v.InstanceType) {
			return Errorf(EINVALID, "ProductionVariants[%d].InstanceType %q must look like ml.<family>.<size>, e.g. ml.m5.xlarge.", i, v.InstanceType)
		}
		if w := v.Weight(); w < 0 || w != w || w > 1e9 {
			return Errorf(EINVALID, "ProductionVariants[%d].InitialVariantWeight must be a number of at least 0, got %v.", i, w)
		}
		total += v.Weight()
	}
	if total <= 0 {
		return Errorf(EINVALID, "ProductionVariants: at least one variant must have a weight above 0.")
	}
	return validateTags(c.Tags)
}

// Variant returns the named variant, or false.
func (c *EndpointConfig) Variant(name string) (ProductionVariant, bool) {
	for _, v := range c.ProductionVariants {
		if v.VariantName == name {
			return v, true
		}
	}
	return ProductionVariant{}, false
}
