package alarm

import "context"

// Tick runs one evaluation round, for benchmarks outside the package.
func (e *Engine) Tick(ctx context.Context) { e.tick(ctx) }
