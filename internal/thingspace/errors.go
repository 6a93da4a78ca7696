package thingspace

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Error is a synchronous error answered by ThingSpace (or its API gateway). Code is the
// namespaced errorCode, e.g. "UnifiedWebService.REQUEST_FAILED.SessionToken.Expired"; for
// gateway faults it is the gateway's numeric code ("900901").
type Error struct {
	HTTPStatus int
	Code       string
	Message    string
	// Method and Path name the call that failed (never with credentials).
	Method string
	Path   string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ThingSpace %s %s: HTTP %d", e.Method, e.Path, e.HTTPStatus)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// HasCode reports whether the error's code matches code by its stable tail (tsapi.CodeMatches):
// HasCode("SessionToken.Expired") matches "UnifiedWebService.REQUEST_FAILED.SessionToken.Expired".
func (e *Error) HasCode(code string) bool {
	return e != nil && tsapi.CodeMatches(e.Code, code)
}

// CodeSuffix returns the code without its service name: "REQUEST_FAILED.SessionToken.Expired".
func (e *Error) CodeSuffix() string {
	if i := strings.IndexByte(e.Code, '.'); i >= 0 {
		return e.Code[i+1:]
	}
	return e.Code
}

// IsCode reports whether err is (or wraps) an *Error whose code matches code (see HasCode); the codes are tsapi.Code*.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.HasCode(code)
}

// sessionRejected reports whether the error says the M2M session token is no longer good, so
// one fresh login may fix it.
func sessionRejected(err error) bool {
	return IsCode(err, tsapi.CodeSessionExpired) || IsCode(err, tsapi.CodeSessionInvalid) || IsCode(err, tsapi.CodeSessionFormat)
}

// tokenRejected reports whether the gateway refused the OAuth token.
func tokenRejected(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.HTTPStatus == http.StatusUnauthorized &&
		(e.HasCode(tsapi.CodeInvalidCredentials) || e.HasCode(tsapi.CodeMissingCredentials))
}

// bulkTooLarge reports whether ThingSpace refused a bulk call for its size.
func bulkTooLarge(err error) bool {
	return IsCode(err, tsapi.CodeMaxRequestsExceeded) || IsCode(err, tsapi.CodeNumberOfDevices)
}

// OutcomeUnknownError says that an action may or may not have been applied: ThingSpace
// answered 5xx, or the connection failed after the request was sent. Sending the action again
// could apply it twice, so the client never does: the caller resolves the outcome through the
// relay's device index and the device's state.
type OutcomeUnknownError struct {
	Action  tsapi.Action
	Devices []tsapi.DeviceEntry
	Cause   error
}

func (e *OutcomeUnknownError) Error() string {
	return fmt.Sprintf("the outcome of %s for %d device(s) (%s) is unknown: ThingSpace may have applied it; "+
		"it was not sent again (%v)", e.Action, len(e.Devices), describeEntries(e.Devices), e.Cause)
}

func (e *OutcomeUnknownError) Unwrap() error { return e.Cause }

// IsOutcomeUnknown reports whether err is or wraps an *OutcomeUnknownError.
func IsOutcomeUnknown(err error) bool {
	var e *OutcomeUnknownError
	return errors.As(err, &e)
}

// LoginError is a refused login. It is never retried: five bad logins lock a real account.
type LoginError struct {
	Cause error
}

func (e *LoginError) Error() string {
	return fmt.Sprintf("ThingSpace refused the M2M session login for the configured username "+
		"(check username and password; it was not retried, because five failed logins lock the account): %v", e.Cause)
}

func (e *LoginError) Unwrap() error { return e.Cause }
