package tsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Callback is one message ThingSpace POSTs to the registered DeviceProfileService listener:
// one per device (or per profile) of an asynchronous request, all sharing the request's id.
// The shape follows the "Callback" sections of ThingSpace's action pages; ParseCallback also
// accepts the spellings of older callbacks and of the SDKs (design/thingspace.md lists them).
type Callback struct {
	Username             string          `json:"username,omitempty"`
	Password             string          `json:"password,omitempty"`
	RequestID            string          `json:"requestId"`
	DeviceIDs            DeviceIDs       `json:"deviceIds,omitempty"`
	DeviceResponse       *DeviceResponse `json:"deviceResponse,omitempty"`
	FaultResponse        *FaultResponse  `json:"faultResponse,omitempty"`
	Status               string          `json:"status"`
	CallbackCount        FlexInt         `json:"callbackCount"`
	MaxCallbackThreshold FlexInt         `json:"maxCallbackThreshold"`
}

// DeviceResponse wraps the operation-specific response. Profile actions use
// deviceProfileResponse; other services' responses are kept raw.
type DeviceResponse struct {
	DeviceProfileResponse *DeviceProfileResponse     `json:"deviceProfileResponse,omitempty"`
	Other                 map[string]json.RawMessage `json:"-"`
}

// MarshalJSON writes deviceProfileResponse and any other operation responses kept raw.
func (d DeviceResponse) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(d.Other)+1)
	for k, v := range d.Other {
		m[k] = v
	}
	if d.DeviceProfileResponse != nil {
		m["deviceProfileResponse"] = d.DeviceProfileResponse
	}
	return json.Marshal(m)
}

// UnmarshalJSON keeps responses other than deviceProfileResponse raw.
func (d *DeviceResponse) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	d.DeviceProfileResponse = nil
	d.Other = nil
	for k, v := range m {
		if strings.EqualFold(k, "deviceProfileResponse") {
			var p DeviceProfileResponse
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("deviceProfileResponse: %w", err)
			}
			d.DeviceProfileResponse = &p
			continue
		}
		if d.Other == nil {
			d.Other = map[string]json.RawMessage{}
		}
		d.Other[k] = v
	}
	return nil
}

// DeviceProfileResponse is the per-device result of a profile action.
type DeviceProfileResponse struct {
	DeviceIdentifierCollection      DeviceIDs         `json:"deviceIdentifierCollection,omitempty"`
	IPAddress                       string            `json:"ipAddress,omitempty"`
	State                           string            `json:"state,omitempty"`
	ServicePlan                     string            `json:"servicePlan,omitempty"`
	DeviceCredential                *DeviceCredential `json:"deviceCredential,omitempty"`
	SmsrOid                         string            `json:"smsrOid,omitempty"`
	ProfileStatus                   string            `json:"profileStatus,omitempty"`
	ProfileRole                     string            `json:"profileRole,omitempty"`
	EuiccStatus                     string            `json:"euiccStatus,omitempty"`
	EuiccStatusCode                 string            `json:"euiccStatusCode,omitempty"`
	EuiccStatusDesc                 string            `json:"euiccStatusDesc,omitempty"`
	EuiccSubAddressUpdateStatus     string            `json:"euiccSubAddressUpdateStatus,omitempty"`
	EuiccSubAddressUpdateStatusCode string            `json:"euiccSubAddressUpdateStatusCode,omitempty"`
	EuiccSubAddressUpdateStatusDesc string            `json:"euiccSubAddressUpdateStatusDesc,omitempty"`
	// ErrorCode and ErrorMessage carry a failure reported inside the profile response rather
	// than as a faultResponse (both forms are simulated, neither is confirmed by ThingSpace).
	ErrorCode    string `json:"errorCode,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// DeviceCredential is the per-device credential ThingSpace includes in some callbacks. It is a
// secret: the relay redacts it before storing anything.
type DeviceCredential struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// FaultResponse is the failure body of a callback.
type FaultResponse struct {
	FaultCode   string `json:"faultcode"`
	FaultString string `json:"faultstring"`
}

// FlexInt decodes a number sent either as a JSON number or as a string ("4"): the docs call
// callbackCount a string while every example sends a number.
type FlexInt int

// UnmarshalJSON accepts 4, "4" and null.
func (f *FlexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %q", s)
	}
	*f = FlexInt(n)
	return nil
}

// ErrNotCallback is returned by ParseCallback for a JSON object that has no request id: the
// relay quarantines such bodies instead of storing them as callbacks.
var ErrNotCallback = errors.New("not a ThingSpace callback: no requestId")

// ParseCallback decodes a callback body, tolerating the documented variants: identifier kinds
// in any case, "SUCCESS"/"Success", numbers as strings, the legacy PascalCase
// {"RequestId", "Device": [{"Kind", "Identifier"}], "Status"} form, and an "ids" list.
func ParseCallback(body []byte) (*Callback, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("callback body is not a JSON object: %w", err)
	}
	// Fold keys to their canonical spelling so that "RequestId", "requestID" and "requestId"
	// all land in the same field.
	canon := map[string]string{
		"username": "username", "password": "password", "requestid": "requestId",
		"deviceids": "deviceIds", "device": "deviceIds", "devices": "deviceIds", "ids": "deviceIds",
		"deviceresponse": "deviceResponse", "faultresponse": "faultResponse", "status": "status",
		"callbackcount": "callbackCount", "maxcallbackthreshold": "maxCallbackThreshold",
	}
	norm := make(map[string]json.RawMessage, len(raw))
	for k, v := range raw {
		if c, ok := canon[strings.ToLower(k)]; ok {
			if _, dup := norm[c]; !dup || c == k {
				norm[c] = v
			}
		}
	}
	var c Callback
	if v, ok := norm["requestId"]; ok {
		if err := json.Unmarshal(v, &c.RequestID); err != nil {
			return nil, fmt.Errorf("requestId: %w", err)
		}
	}
	c.RequestID = strings.TrimSpace(c.RequestID)
	if c.RequestID == "" {
		return nil, ErrNotCallback
	}
	for _, f := range []struct {
		key string
		dst any
	}{
		{"username", &c.Username}, {"password", &c.Password}, {"status", &c.Status},
		{"callbackCount", &c.CallbackCount}, {"maxCallbackThreshold", &c.MaxCallbackThreshold},
	} {
		if v, ok := norm[f.key]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, f.dst); err != nil {
				return nil, fmt.Errorf("%s: %w", f.key, err)
			}
		}
	}
	if v, ok := norm["deviceIds"]; ok && string(v) != "null" {
		ids, err := parseIDList(v)
		if err != nil {
			return nil, fmt.Errorf("deviceIds: %w", err)
		}
		c.DeviceIDs = ids
	}
	if v, ok := norm["deviceResponse"]; ok && string(v) != "null" {
		var d DeviceResponse
		if err := json.Unmarshal(v, &d); err != nil {
			return nil, fmt.Errorf("deviceResponse: %w", err)
		}
		c.DeviceResponse = &d
	}
	if v, ok := norm["faultResponse"]; ok && string(v) != "null" {
		var f FaultResponse
		if err := json.Unmarshal(v, &f); err != nil {
			return nil, fmt.Errorf("faultResponse: %w", err)
		}
		c.FaultResponse = &f
	}
	return &c, nil
}

// parseIDList accepts [{kind,id}], [{deviceIds:[...]}] and [[{kind,id}]] and flattens them.
func parseIDList(b json.RawMessage) (DeviceIDs, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil {
		return nil, err
	}
	var out DeviceIDs
	for _, e := range elems {
		t := bytes.TrimSpace(e)
		if len(t) > 0 && t[0] == '[' {
			inner, err := parseIDList(e)
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
			continue
		}
		var entry DeviceEntry
		if err := json.Unmarshal(e, &entry); err == nil && len(entry.DeviceIDs) > 0 {
			out = append(out, entry.DeviceIDs...)
			continue
		}
		var id DeviceID
		if err := json.Unmarshal(e, &id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// CallbackStatus is a callback's status, normalised.
type CallbackStatus string

// The normalised callback statuses. Only Succeeded and Failed are terminal.
const (
	StatusSucceeded CallbackStatus = "succeeded"
	StatusFailed    CallbackStatus = "failed"
	StatusWarning   CallbackStatus = "warning"
	StatusPending   CallbackStatus = "pending"
)

// Terminal reports whether the status ends a device's wait.
func (s CallbackStatus) Terminal() bool { return s == StatusSucceeded || s == StatusFailed }

// NormalizeStatus maps "SUCCESS", "Success", "Failed", "Failure", "warning", "Pending", ... to a
// CallbackStatus. Anything unrecognised is pending: the provider waits rather than guesses.
func NormalizeStatus(s string) CallbackStatus {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "success", "succeeded", "successful", "completed", "complete", "done":
		return StatusSucceeded
	case "failed", "failure", "fail", "error", "rejected", "cancelled", "canceled":
		return StatusFailed
	case "warning", "warn":
		return StatusWarning
	}
	return StatusPending
}

// Identifiers returns every identifier the callback names: its deviceIds and the response's
// deviceIdentifierCollection.
func (c *Callback) Identifiers() DeviceIDs {
	ids := append(DeviceIDs(nil), c.DeviceIDs...)
	if p := c.Profile(); p != nil {
		ids = append(ids, p.DeviceIdentifierCollection...)
	}
	return ids
}

// Profile returns the deviceProfileResponse, or nil.
func (c *Callback) Profile() *DeviceProfileResponse {
	if c.DeviceResponse == nil {
		return nil
	}
	return c.DeviceResponse.DeviceProfileResponse
}

// DeviceLevel reports whether this is the final device-level message of device_suspend or
// device_resume: it names the device (eid) but no profile (iccid).
func (c *Callback) DeviceLevel() bool {
	ids := c.Identifiers()
	return ids.Get(KindEID) != "" && ids.Get(KindICCID) == ""
}

// Outcome judges the callback for a request of the given action. For device_suspend and
// device_resume the per-profile messages are progress: only the device-level message (or a
// fault without devices) is final. For download_enable a "success" whose profileStatus does not
// show the profile enabled is a failure (ThingSpace's download_enable page: the download can succeed while the enable
// fails). The action may be "" when unknown; then the general rules apply.
func (c *Callback) Outcome(action Action) (CallbackStatus, *CallbackError) {
	status := NormalizeStatus(c.Status)
	p := c.Profile()
	if c.FaultResponse != nil && status != StatusWarning {
		status = StatusFailed
	}
	if status == StatusSucceeded && p != nil && (p.ErrorCode != "" || p.ErrorMessage != "") {
		status = StatusFailed
	}
	if (action == ActionDeviceSuspend || action == ActionDeviceResume) && status.Terminal() &&
		!c.DeviceLevel() && !(c.FaultResponse != nil && len(c.DeviceIDs) == 0) {
		return StatusWarning, nil
	}
	if status == StatusSucceeded && action == ActionDownloadEnable {
		ps := NormalizeProfileStatus(profileStatusOf(p))
		if ps != ProfileEnabled {
			return StatusFailed, &CallbackError{
				Code:    "DownloadEnable.EnableFailed",
				Message: fmt.Sprintf("the profile was downloaded but not enabled (profileStatus %q)", profileStatusOf(p)),
			}
		}
	}
	if status != StatusFailed {
		return status, nil
	}
	e := &CallbackError{}
	switch {
	case c.FaultResponse != nil:
		e.Code, e.Message = c.FaultResponse.FaultCode, c.FaultResponse.FaultString
	case p != nil && (p.ErrorCode != "" || p.ErrorMessage != ""):
		e.Code, e.Message = p.ErrorCode, p.ErrorMessage
	case p != nil && p.EuiccStatusDesc != "":
		e.Code, e.Message = p.EuiccStatusCode, p.EuiccStatusDesc
	default:
		e.Message = "ThingSpace reported status " + strconv.Quote(c.Status)
	}
	return status, e
}

func profileStatusOf(p *DeviceProfileResponse) string {
	if p == nil {
		return ""
	}
	return p.ProfileStatus
}

// CallbackError is the failure a callback reports for a device.
type CallbackError struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}

func (e *CallbackError) Error() string {
	if e.Code == "" {
		return e.Message
	}
	return e.Code + ": " + e.Message
}

// ProfileStatus is a profile's status, normalised.
type ProfileStatus string

// The normalised profile statuses.
const (
	ProfileEnabled       ProfileStatus = "ENABLE"
	ProfileDisabled      ProfileStatus = "DISABLE"
	ProfileDownloaded    ProfileStatus = "DOWNLOAD_DISABLE"
	ProfileNotDownloaded ProfileStatus = "NOT_DOWNLOADED"
	ProfileDeleted       ProfileStatus = "DELETE"
	ProfileSuspended     ProfileStatus = "SUSPEND"
	ProfileUnknown       ProfileStatus = "UNKNOWN"
	ProfileFailed        ProfileStatus = "FAILED"
)

// NormalizeProfileStatus maps ENABLE/enable/DOWNLOAD_ENABLE/"Enable Successful" to
// ProfileEnabled and so on. A status that mentions a failure is ProfileFailed.
func NormalizeProfileStatus(s string) ProfileStatus {
	k := strings.ToUpper(strings.TrimSpace(s))
	k = strings.NewReplacer("-", "_", " ", "_").Replace(k)
	switch {
	case k == "":
		return ProfileUnknown
	case strings.Contains(k, "FAIL"):
		return ProfileFailed
	case k == "ENABLE" || k == "ENABLED" || k == "DOWNLOAD_ENABLE" || strings.HasPrefix(k, "ENABLE_SUCC"):
		return ProfileEnabled
	case k == "DOWNLOAD_DISABLE" || k == "DOWNLOADED" || strings.HasPrefix(k, "DOWNLOAD_SUCC"):
		return ProfileDownloaded
	case k == "DISABLE" || k == "DISABLED":
		return ProfileDisabled
	case k == "NOT_DOWNLOADED":
		return ProfileNotDownloaded
	case k == "DELETE" || k == "DELETED":
		return ProfileDeleted
	case k == "SUSPEND" || k == "SUSPENDED":
		return ProfileSuspended
	}
	return ProfileUnknown
}

// DeviceOutcome is what the callbacks of a request say about one of its devices.
type DeviceOutcome struct {
	// Device is the identifiers sent for the device.
	Device DeviceIDs
	// Status is pending until a terminal callback arrived; warning after a "warning" one.
	Status CallbackStatus
	// Callback is the callback that decided Status (the last terminal one), or nil.
	Callback *Callback
	// Err is set when Status is failed.
	Err *CallbackError
}

// ResolveDevices decides which devices of one request are done, from its callbacks
// given in the order the relay sequenced them: a device is done on a terminal callback that
// matches any identifier sent for it; "warning" is progress; the last terminal callback wins;
// a faultResponse without deviceIds fails every device of the request.
func ResolveDevices(action Action, devices []DeviceIDs, callbacks []*Callback) []DeviceOutcome {
	out := make([]DeviceOutcome, len(devices))
	for i, d := range devices {
		out[i] = DeviceOutcome{Device: d, Status: StatusPending}
	}
	for _, cb := range callbacks {
		status, cbErr := cb.Outcome(action)
		requestWide := cb.FaultResponse != nil && len(cb.Identifiers()) == 0
		ids := cb.Identifiers()
		for i := range out {
			if !requestWide && !out[i].Device.Matches(ids) {
				continue
			}
			switch {
			case status.Terminal():
				out[i].Status, out[i].Callback, out[i].Err = status, cb, cbErr
			case status == StatusWarning && !out[i].Status.Terminal():
				out[i].Status = StatusWarning
			}
		}
	}
	return out
}

// LogValue keeps the secrets out of a Callback logged with slog: ThingSpace copies the
// listener's username and password into every callback, and some carry a device credential.
func (c *Callback) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("request_id", c.RequestID), slog.String("status", c.Status),
		slog.String("password", Redacted(c.Password)), slog.Int("callback_count", int(c.CallbackCount))}
	for _, id := range c.Identifiers() {
		attrs = append(attrs, slog.String(strings.ToLower(id.Kind), id.ID))
	}
	if c.FaultResponse != nil {
		attrs = append(attrs, slog.String("fault", c.FaultResponse.FaultCode))
	}
	return slog.GroupValue(attrs...)
}

// Redacted is what a log shows in place of a secret (ThingSpace's wire carries credentials:
// logins, callbacks, device credentials): whether it is set, never its value.
func Redacted(secret string) string {
	if secret == "" {
		return ""
	}
	return "(redacted)"
}
