package kiln

import (
	"errors"
	"fmt"
)

// Error codes. The HTTP layers map them to statuses and protocol error shapes;
// only EINTERNAL is logged, since the others are the caller's to fix.
const (
	EINVALID  = "invalid"        // the request is malformed or breaks a rule
	ENOTFOUND = "not_found"      // a named resource does not exist
	ECONFLICT = "conflict"       // the resource exists already, or is busy
	ELIMIT    = "limit_exceeded" // a quota would be exceeded (see kiln serve --quota)
	EINTERNAL = "internal"       // Kiln failed; not the caller's fault
)

// Error is an application error: a code for programs and a message for people.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or EINTERNAL
// for any other non-nil error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message for other errors so that internals do not leak to callers.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred."
}
