// How an endpoint's traffic splits between the deployment's old (blue) and
// new (green) fleets: a fleet's share of its variant times the variant's
// weight among all variants, as the gateway routes. The live stream computes
// the same on the server; the overview computes it from /v1/endpoints.

export function greenIDs(ep) {
  const d = ep.Deployment;
  if (!d || d.Kind === 'Create') return new Set();
  return new Set(d.Green || []);
}

export function shares(ep) {
  const green = greenIDs(ep);
  const weights = new Map();
  let total = 0;
  for (const v of ep.ProductionVariants || []) {
    weights.set(v.VariantName, v.CurrentWeight);
    total += v.CurrentWeight;
  }
  const n = (ep.ProductionVariants || []).length;
  let blue = 0;
  let greenShare = 0;
  for (const f of ep.Fleets || []) {
    let w = 1;
    if (total > 0) w = (weights.get(f.VariantName) || 0) / total;
    else if (n > 0) w = 1 / n;
    const s = w * f.TrafficShare;
    if (green.has(f.ID)) greenShare += s;
    else blue += s;
  }
  return {blue, green: greenShare};
}
