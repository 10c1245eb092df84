package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// Role is what an access key may do. Each key has one, from the kiln_role
// line of its profile in the credentials file (KILN_ROLE for the key in the
// environment); a key without one is an admin, so that credentials files
// written before roles existed keep working.
type Role string

// The roles, from the narrowest to the widest. read and invoke are
// disjoint; deploy holds both; admin holds everything.
const (
	// RoleInvoke may only call endpoints (POST /endpoints/NAME/invocations),
	// which needs a key only with --invoke-auth.
	RoleInvoke Role = "invoke"
	// RoleRead may call every read operation of every API (Describe*,
	// List*, Get*, GET /v1/...), read /metrics and view the dashboard.
	RoleRead Role = "read"
	// RoleDeploy is read and invoke, and may create, update and delete
	// endpoint configs, endpoints, alarms and tags, put metric data, set
	// alarm states, deploy, roll back, stop and change weights.
	RoleDeploy Role = "deploy"
	// RoleAdmin may do everything, including creating and deleting models:
	// a model names a command that Kiln runs on the host.
	RoleAdmin Role = "admin"
)

// DefaultRole is the role of a key whose profile names none.
const DefaultRole = RoleAdmin

// Permission is what one request needs.
type Permission int

const (
	// PermRead reads state: records, metrics, logs, the dashboard.
	PermRead Permission = iota + 1
	// PermInvoke calls an endpoint.
	PermInvoke
	// PermDeploy changes endpoints, configs, alarms, tags and metric data.
	PermDeploy
	// PermAdmin changes models, which run commands on the host.
	PermAdmin
)

func (p Permission) String() string {
	switch p {
	case PermRead:
		return "read"
	case PermInvoke:
		return "invoke"
	case PermDeploy:
		return "deploy"
	case PermAdmin:
		return "admin"
	}
	return fmt.Sprintf("Permission(%d)", int(p))
}

// ParseRole returns the role named s (case-insensitive).
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(strings.TrimSpace(s))); r {
	case RoleInvoke, RoleRead, RoleDeploy, RoleAdmin:
		return r, nil
	}
	return "", fmt.Errorf("role %q: want admin, deploy, read or invoke", s)
}

// Allows reports whether role r grants p.
func (r Role) Allows(p Permission) bool {
	switch r {
	case RoleAdmin:
		return true
	case RoleDeploy:
		return p == PermRead || p == PermInvoke || p == PermDeploy
	case RoleRead:
		return p == PermRead
	case RoleInvoke:
		return p == PermInvoke
	}
	return false
}

// Includes reports whether r grants everything o grants: a token may carry
// a role its key includes, never a wider one.
func (r Role) Includes(o Role) bool {
	for _, p := range []Permission{PermRead, PermInvoke, PermDeploy, PermAdmin} {
		if o.Allows(p) && !r.Allows(p) {
			return false
		}
	}
	return true
}

// Principal is who made an authenticated request: the access key, and the
// role the request carries (the key's, or a token's narrower one).
type Principal struct {
	AccessKeyID string
	Role        Role
	// Via is how the request proved it: "sigv4", "token" or "session".
	Via string
}

type principalCtxKey struct{}

func withPrincipal(r *http.Request, p Principal) *http.Request {
	ctx := context.WithValue(r.Context(), principalCtxKey{}, p)
	ctx = context.WithValue(ctx, accessKeyCtxKey{}, p.AccessKeyID)
	return r.WithContext(ctx)
}

// PrincipalOf returns the principal of an authenticated request's context,
// and false when the request was not authenticated (no credentials are
// configured).
func PrincipalOf(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalCtxKey{}).(Principal)
	return p, ok
}

// Allowed reports whether the request whose context is ctx may do what p
// names. A request without a principal passed no authentication because
// none is configured, and may do everything.
func Allowed(ctx context.Context, p Permission) bool {
	pr, ok := PrincipalOf(ctx)
	return !ok || pr.Role.Allows(p)
}

// DeniedMessage says what a refused request lacked.
func DeniedMessage(ctx context.Context, p Permission, what string) string {
	pr, _ := PrincipalOf(ctx)
	return fmt.Sprintf("User: %s (role %s) is not authorized to perform: %s; it needs a key whose kiln_role grants %s.", pr.AccessKeyID, pr.Role, what, p)
}

// AWSOpPermission is the permission an operation of the AWS-compatible APIs
// needs: reads are
// Describe*, List* and Get*; models are admin's; the rest is deploy's.
func AWSOpPermission(op string) Permission {
	switch {
	case strings.HasPrefix(op, "Describe"), strings.HasPrefix(op, "List"), strings.HasPrefix(op, "Get"):
		return PermRead
	case op == "CreateModel", op == "DeleteModel":
		return PermAdmin
	}
	return PermDeploy
}

// NativePermission is what a request to the native API (/v1) needs: GET is
// read, and so are the POSTs that only query metrics; models are admin's;
// every other change is deploy's.
func NativePermission(r *http.Request) Permission {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return PermRead
	case r.Method == http.MethodPost && (p == "/v1/metrics/statistics" || p == "/v1/metrics/list"):
		return PermRead
	case p == "/v1/models" || strings.HasPrefix(p, "/v1/models/"):
		return PermAdmin
	case p == "/v1/tokens":
		// Any key may have a token of its own role or a narrower one.
		return 0
	}
	return PermDeploy
}

// RequirePermission serves h only to requests whose principal has the
// permission need(r) returns, and answers others with 403 in the native
// API's error shape. A permission of 0 needs nothing beyond authentication.
func RequirePermission(h http.Handler, need func(*http.Request) Permission) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := need(r)
		if p != 0 && !Allowed(r.Context(), p) {
			DontReadBody(w, r)
			WriteJSON(w, http.StatusForbidden, ErrorBody{Code: "forbidden", Message: DeniedMessage(r.Context(), p, r.Method+" "+r.URL.Path)})
			return
		}
		h.ServeHTTP(w, r)
	})
}
