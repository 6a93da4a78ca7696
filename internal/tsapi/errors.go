package tsapi

import "strings"

// Known error codes, as the part after the service name that CodeMatches matches.
const (
	CodeSessionExpired      = "SessionToken.Expired"
	CodeSessionInvalid      = "SessionToken.Invalid"
	CodeSessionFormat       = "SessionToken.Format"
	CodeDeviceNotFound      = "DeviceNotFound"
	CodeDeviceAlreadyActive = "DeviceAlreadyActive"
	CodeDeviceStateInvalid  = "DeviceState.Invalid"
	CodeMaxRequestsExceeded = "MaxRequestsExceeded"
	CodeNumberOfDevices     = "NumberofDevices"
	CodeAccountNotFound     = "AccountNotFound"
	CodeInvalidCredentials  = "900901" // gateway: bad or expired OAuth token
	CodeMissingCredentials  = "900902" // gateway: no OAuth token
	CodeAuthFailed          = "AuthenticationFailed"
	CodeUserLocked          = "UserLocked"
	// CodeProfileAlreadyEnabled is enable's answer for a profile that is enabled already.
	CodeProfileAlreadyEnabled = "Profile.AlreadyEnabled"
)

// CodeMatches reports whether the ThingSpace error code full is code or ends with "."+code,
// ignoring case. ThingSpace codes are "<Service>.<CLASS>.<Code>" and the service name varies by
// endpoint, so callers match on the stable tail: CodeMatches(
// "UnifiedWebService.REQUEST_FAILED.SessionToken.Expired", CodeSessionExpired) is true. The
// same rule applies to synchronous errors and to the codes callbacks carry.
func CodeMatches(full, code string) bool {
	if code == "" {
		return false
	}
	f, c := strings.ToLower(full), strings.ToLower(code)
	return f == c || strings.HasSuffix(f, "."+c)
}
