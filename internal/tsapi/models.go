package tsapi

import (
	"encoding/json"
	"strings"
)

// This file holds the wire types of the ThingSpace M2M API: request bodies of the profile
// actions, the synchronous answers, the v1 device list, the v2 request status, plans and
// callback registrations. The simulator shares them because they describe the same JSON.

// Action names a profile action: the last path segment of
// POST /api/m2m/v1/devices/profile/actions/{action}.
type Action string

// The profile actions of ThingSpace's eSIM profile API.
const (
	ActionActivate        Action = "activate"
	ActionDownloadEnable  Action = "download_enable"
	ActionEnable          Action = "enable"
	ActionServicePlan     Action = "serviceplan"
	ActionProfileResume   Action = "profile_resume"
	ActionDeactivate      Action = "deactivate"
	ActionProfileSuspend  Action = "profile_suspend"
	ActionDeviceSuspend   Action = "device_suspend"
	ActionDeviceResume    Action = "device_resume"
	ActionDisable         Action = "disable"
	ActionDelete          Action = "delete"
	ActionDownload        Action = "download"
	ActionDownloadDisable Action = "download_disable"
)

// AllActions lists every profile action the client and the simulator know, in a stable order.
var AllActions = []Action{
	ActionActivate, ActionDownloadEnable, ActionEnable, ActionServicePlan, ActionProfileResume,
	ActionDeactivate, ActionProfileSuspend, ActionDeviceSuspend, ActionDeviceResume,
	ActionDisable, ActionDelete, ActionDownload, ActionDownloadDisable,
}

// Valid reports whether a is one of AllActions.
func (a Action) Valid() bool {
	for _, k := range AllActions {
		if a == k {
			return true
		}
	}
	return false
}

// Identifier kinds as the requests spell them (lower case). Callbacks and responses may use any
// case ("Eid", "Iccid"); compare with strings.EqualFold or NormalizeKind.
const (
	KindEID    = "eid"
	KindICCID  = "iccid"
	KindIMEI   = "imei"
	KindMDN    = "mdn"
	KindMSISDN = "msisdn"
	KindMEID   = "meid"
	KindESN    = "esn"
)

// NormalizeKind lower-cases an identifier kind so that "Eid", "EID" and "eid" compare equal.
func NormalizeKind(kind string) string { return strings.ToLower(strings.TrimSpace(kind)) }

// DeviceID is one identifier of a device: {"kind": "eid", "id": "8904..."}.
type DeviceID struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// UnmarshalJSON accepts the legacy PascalCase form {"Kind": ..., "Identifier": ...} as well.
func (d *DeviceID) UnmarshalJSON(b []byte) error {
	var raw struct {
		Kind       string `json:"kind"`
		ID         string `json:"id"`
		Identifier string `json:"Identifier"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	d.Kind = raw.Kind
	d.ID = raw.ID
	if d.ID == "" {
		d.ID = raw.Identifier
	}
	return nil
}

// DeviceIDs is the set of identifiers of one device.
type DeviceIDs []DeviceID

// Get returns the identifier of the given kind (compared case-insensitively), or "".
func (ids DeviceIDs) Get(kind string) string {
	for _, id := range ids {
		if strings.EqualFold(id.Kind, kind) {
			return id.ID
		}
	}
	return ""
}

// Describe names the device in messages: "EID <eid>", else its first identifier ("ICCID
// <iccid>"); "" when it has none.
func (ids DeviceIDs) Describe() string {
	if eid := ids.Get(KindEID); eid != "" {
		return "EID " + eid
	}
	if len(ids) > 0 {
		return strings.ToUpper(ids[0].Kind) + " " + ids[0].ID
	}
	return ""
}

// Matches reports whether ids and other share at least one identifier (same kind, compared
// case-insensitively, and same value).
func (ids DeviceIDs) Matches(other DeviceIDs) bool {
	for _, a := range ids {
		if a.ID == "" {
			continue
		}
		for _, b := range other {
			if a.ID == b.ID && strings.EqualFold(a.Kind, b.Kind) {
				return true
			}
		}
	}
	return false
}

// DeviceEntry is one element of a request's "devices" array.
type DeviceEntry struct {
	DeviceIDs DeviceIDs `json:"deviceIds"`
	// Also lists identifiers of the same device that the action does not send (profile_suspend
	// names only an ICCID): never on the wire, but the journal indexes the device by them too,
	// so that a later check by EID, IMEI or MDN finds the action.
	Also DeviceIDs `json:"-"`
}

// UnmarshalJSON accepts "ids" (the SDK's deactivate model) as a synonym of "deviceIds".
func (e *DeviceEntry) UnmarshalJSON(b []byte) error {
	var raw struct {
		DeviceIDs DeviceIDs `json:"deviceIds"`
		IDs       DeviceIDs `json:"ids"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	e.DeviceIDs = raw.DeviceIDs
	if len(e.DeviceIDs) == 0 {
		e.DeviceIDs = raw.IDs
	}
	return nil
}

// PlaceOfUse is the primary place of use sent with an activation.
type PlaceOfUse struct {
	CustomerName CustomerName `json:"customerName"`
	Address      Address      `json:"address"`
}

// CustomerName is the customer named in a place of use.
type CustomerName struct {
	Title      string `json:"title,omitempty"`
	FirstName  string `json:"firstName"`
	MiddleName string `json:"middleName,omitempty"`
	LastName   string `json:"lastName"`
	Suffix     string `json:"suffix,omitempty"`
}

// Address is the postal address of a place of use.
type Address struct {
	AddressLine1 string `json:"addressLine1"`
	AddressLine2 string `json:"addressLine2,omitempty"`
	City         string `json:"city"`
	State        string `json:"state"`
	Zip          string `json:"zip"`
	Zip4         string `json:"zip4,omitempty"`
	Country      string `json:"country"`
}

// ProfileRequest is the union of the bodies the profile actions take. Every action sends
// "devices" and "accountName"; the other fields are sent only by the actions that document them,
// and the typed constructors below (ActivateRequest, ...) fill only those. The simulator decodes
// any action's body into it.
type ProfileRequest struct {
	Devices           []DeviceEntry `json:"devices"`
	AccountName       string        `json:"accountName"`
	ServicePlan       string        `json:"servicePlan,omitempty"`
	MdnZipCode        string        `json:"mdnZipCode,omitempty"`
	SmsrOid           string        `json:"smsrOid,omitempty"`
	PrimaryPlaceOfUse *PlaceOfUse   `json:"primaryPlaceOfUse,omitempty"`
	CarrierName       string        `json:"carrierName,omitempty"`
	EtfWaiver         *bool         `json:"etfWaiver,omitempty"`
	ReasonCode        string        `json:"reasonCode,omitempty"`
	// Attempt is 2 or more when the same change is sent again because an earlier attempt's
	// outcome stayed unknown past the horizon (never on the wire; the journal records it, and
	// such a call is never coalesced with first attempts).
	Attempt int `json:"-"`
}

// UnmarshalJSON accepts "smrsOid", the misspelling of the 2026 TypeScript SDK, as "smsrOid".
func (r *ProfileRequest) UnmarshalJSON(b []byte) error {
	type plain ProfileRequest
	var raw struct {
		plain
		SmrsOid string `json:"smrsOid"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = ProfileRequest(raw.plain)
	if r.SmsrOid == "" {
		r.SmsrOid = raw.SmrsOid
	}
	return nil
}

// ActivateRequest activates (or reactivates) a Verizon US or Global profile (ThingSpace's activate page).
// Each device needs eid, iccid and imei.
type ActivateRequest struct {
	Devices           []DeviceEntry
	AccountName       string
	ServicePlan       string
	MdnZipCode        string
	PrimaryPlaceOfUse *PlaceOfUse
	SmsrOid           string // local profiles only
}

// DownloadEnableRequest downloads and enables a profile (ThingSpace's download_enable page). Global profiles send
// ServicePlan (the Global plan); local profiles send SmsrOid. Each device needs eid and iccid.
type DownloadEnableRequest struct {
	Devices     []DeviceEntry
	AccountName string
	ServicePlan string
	SmsrOid     string
}

// EnableRequest enables a profile already downloaded (ThingSpace's enable page). Local profiles need SmsrOid.
type EnableRequest struct {
	Devices     []DeviceEntry
	AccountName string
	ServicePlan string
	SmsrOid     string
}

// ServicePlanRequest changes the service plan (ThingSpace's serviceplan page). Each device needs eid and iccid.
type ServicePlanRequest struct {
	Devices     []DeviceEntry
	AccountName string
	ServicePlan string
}

// ProfileResumeRequest resumes a suspended US or Global profile by iccid and plan (ThingSpace's profile_resume page).
type ProfileResumeRequest struct {
	Devices     []DeviceEntry
	AccountName string
	ServicePlan string
}

// ProfileSuspendRequest suspends a Global profile by iccid and plan.
type ProfileSuspendRequest struct {
	Devices     []DeviceEntry
	AccountName string
	ServicePlan string
}

// DeviceSuspendRequest suspends (or, as DeviceResumeRequest, resumes) a whole device by eid.
type DeviceSuspendRequest struct {
	Devices     []DeviceEntry
	AccountName string
}

// DeviceResumeRequest resumes a whole device by eid.
type DeviceResumeRequest = DeviceSuspendRequest

// DeactivateRequest deactivates a profile. EtfWaiver and ReasonCode are always sent: the
// defaults of the API generations disagree (§8.8), so the caller decides explicitly.
type DeactivateRequest struct {
	Devices     []DeviceEntry
	AccountName string
	ServicePlan string
	EtfWaiver   bool
	ReasonCode  string
}

// ProfileChangeRequest is the body of disable, delete, download and download_disable.
// SmsrOid is required for local profiles; ServicePlan for Global ones.
type ProfileChangeRequest struct {
	Devices     []DeviceEntry
	AccountName string
	ServicePlan string
	SmsrOid     string
}

// Body returns the JSON body of the request.
func (r ActivateRequest) Body() ProfileRequest {
	return ProfileRequest{Devices: r.Devices, AccountName: r.AccountName, ServicePlan: r.ServicePlan,
		MdnZipCode: r.MdnZipCode, PrimaryPlaceOfUse: r.PrimaryPlaceOfUse, SmsrOid: r.SmsrOid}
}

// Body returns the JSON body of the request.
func (r DownloadEnableRequest) Body() ProfileRequest {
	return ProfileRequest{Devices: r.Devices, AccountName: r.AccountName, ServicePlan: r.ServicePlan, SmsrOid: r.SmsrOid}
}

// Body returns the JSON body of the request.
func (r EnableRequest) Body() ProfileRequest {
	return ProfileRequest{Devices: r.Devices, AccountName: r.AccountName, ServicePlan: r.ServicePlan, SmsrOid: r.SmsrOid}
}

// Body returns the JSON body of the request.
func (r ServicePlanRequest) Body() ProfileRequest {
	return ProfileRequest{Devices: r.Devices, AccountName: r.AccountName, ServicePlan: r.ServicePlan}
}

// Body returns the JSON body of the request.
func (r ProfileResumeRequest) Body() ProfileRequest {
	return ProfileRequest{Devices: r.Devices, AccountName: r.AccountName, ServicePlan: r.ServicePlan}
}

// Body returns the JSON body of the request.
func (r ProfileSuspendRequest) Body() ProfileRequest {
	return ProfileRequest{Devices: r.Devices, AccountName: r.AccountName, ServicePlan: r.ServicePlan}
}

// Body returns the JSON body of the request.
func (r DeviceSuspendRequest) Body() ProfileRequest {
	return ProfileRequest{Devices: r.Devices, AccountName: r.AccountName}
}

// Body returns the JSON body of the request.
func (r DeactivateRequest) Body() ProfileRequest {
	waiver := r.EtfWaiver
	return ProfileRequest{Devices: r.Devices, AccountName: r.AccountName, ServicePlan: r.ServicePlan,
		EtfWaiver: &waiver, ReasonCode: r.ReasonCode}
}

// Body returns the JSON body of the request.
func (r ProfileChangeRequest) Body() ProfileRequest {
	return ProfileRequest{Devices: r.Devices, AccountName: r.AccountName, ServicePlan: r.ServicePlan, SmsrOid: r.SmsrOid}
}

// RequestResponse is the synchronous answer of every asynchronous call.
type RequestResponse struct {
	RequestID string `json:"requestId"`
}

// DeviceListRequest is the body of the synchronous v1 list POST /api/m2m/v1/devices/actions/list.
type DeviceListRequest struct {
	AccountName         string      `json:"accountName,omitempty"`
	DeviceID            *DeviceID   `json:"deviceId,omitempty"`
	Filter              *ListFilter `json:"filter,omitempty"`
	CurrentState        string      `json:"currentState,omitempty"`
	ServicePlan         string      `json:"servicePlan,omitempty"`
	GroupName           string      `json:"groupName,omitempty"`
	Earliest            string      `json:"earliest,omitempty"`
	Latest              string      `json:"latest,omitempty"`
	LargestDeviceIDSeen int64       `json:"largestDeviceIdSeen,omitempty"`
	MaxNumberOfDevices  int         `json:"maxNumberOfDevices,omitempty"`
}

// ListFilter narrows the v1 list by identifier kind.
type ListFilter struct {
	DeviceIdentifierFilters []DeviceIdentifierFilter `json:"deviceIdentifierFilters,omitempty"`
}

// DeviceIdentifierFilter matches devices whose identifier of Kind contains Contains.
type DeviceIdentifierFilter struct {
	Kind     string `json:"kind"`
	Contains string `json:"contains,omitempty"`
}

// DeviceListResponse is the v1 list's answer. It has no profile status or role: ThingSpace's
// synchronous list does not know them.
type DeviceListResponse struct {
	HasMoreData bool     `json:"hasMoreData"`
	Devices     []Device `json:"devices"`
}

// Device is one device of the v1 list (ThingspaceDevice in the SDKs).
type Device struct {
	AccountName         string               `json:"accountName"`
	BillingCycleEndDate string               `json:"billingCycleEndDate,omitempty"`
	CarrierInformations []CarrierInformation `json:"carrierInformations"`
	Connected           bool                 `json:"connected"`
	CreatedAt           string               `json:"createdAt,omitempty"`
	DeviceIDs           DeviceIDs            `json:"deviceIds"`
	ExtendedAttributes  []KeyValue           `json:"extendedAttributes"`
	GroupNames          []string             `json:"groupNames"`
	IPAddress           string               `json:"ipAddress,omitempty"`
	LastActivationBy    string               `json:"lastActivationBy,omitempty"`
	LastActivationDate  string               `json:"lastActivationDate,omitempty"`
	LastConnectionDate  string               `json:"lastConnectionDate,omitempty"`
}

// CarrierInformation is the carrier, plan and state of a device line.
type CarrierInformation struct {
	CarrierName string `json:"carrierName"`
	ServicePlan string `json:"servicePlan"`
	State       string `json:"state"`
}

// KeyValue is one extended attribute.
type KeyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// State returns the device's service state, normalised (see NormalizeState).
func (d Device) State() DeviceState {
	if len(d.CarrierInformations) == 0 {
		return StateUnknown
	}
	return NormalizeState(d.CarrierInformations[0].State)
}

// ServicePlan returns the device's current service plan.
func (d Device) ServicePlan() string {
	if len(d.CarrierInformations) == 0 {
		return ""
	}
	return d.CarrierInformations[0].ServicePlan
}

// Attribute returns the value of an extended attribute, or "".
func (d Device) Attribute(key string) string {
	for _, kv := range d.ExtendedAttributes {
		if strings.EqualFold(kv.Key, key) {
			return kv.Value
		}
	}
	return ""
}

// DeviceState is a device's service state, normalised from the many spellings ThingSpace uses.
type DeviceState string

// The normalised device states.
const (
	StateUnknown             DeviceState = "unknown"
	StatePreActive           DeviceState = "pre-active"
	StateActive              DeviceState = "active"
	StateSuspended           DeviceState = "suspended"
	StateDeactive            DeviceState = "deactive"
	StatePendingActivation   DeviceState = "pending_activation"
	StatePendingDeactivation DeviceState = "pending_deactivation"
	StatePendingSuspend      DeviceState = "pending_suspend"
	StatePendingResume       DeviceState = "pending_resume"
)

// NormalizeState maps ThingSpace's spellings (Activate/ACTIVE/active, Suspend/SUSPEND,
// Deactive/DEACTIVATED, Pre-active/PRE_ACTIVE, PENDING_*) to one DeviceState.
func NormalizeState(s string) DeviceState {
	k := strings.ToLower(strings.TrimSpace(s))
	k = strings.NewReplacer("-", "_", " ", "_").Replace(k)
	switch k {
	case "active", "activate", "activated":
		return StateActive
	case "suspend", "suspended":
		return StateSuspended
	case "deactive", "deactivate", "deactivated":
		return StateDeactive
	case "pre_active", "preactive", "activation_ready", "inventory", "test_ready":
		return StatePreActive
	case "pending_activation", "pending_activate":
		return StatePendingActivation
	case "pending_deactivation", "pending_deactivate":
		return StatePendingDeactivation
	case "pending_suspend", "pending_suspension":
		return StatePendingSuspend
	case "pending_resume", "pending_restore":
		return StatePendingResume
	}
	if strings.HasPrefix(k, "pending") {
		return DeviceState(k)
	}
	return StateUnknown
}

// Pending reports whether the state is a PENDING_* state: a request is in flight.
func (s DeviceState) Pending() bool { return strings.HasPrefix(string(s), "pending") }

// RequestStatusResponse is the v2 request status
// GET /api/m2m/v2/accounts/{account}/requests/{requestId}/status.
type RequestStatusResponse struct {
	RequestID   string       `json:"requestId"`
	Status      string       `json:"status"`
	SubRequests []SubRequest `json:"subRequests"`
}

// UnmarshalJSON accepts the SDK's "subrequests" as well as the documented "subRequests".
func (r *RequestStatusResponse) UnmarshalJSON(b []byte) error {
	type plain RequestStatusResponse
	var raw struct {
		plain
		Lower []SubRequest `json:"subrequests"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = RequestStatusResponse(raw.plain)
	if len(r.SubRequests) == 0 {
		r.SubRequests = raw.Lower
	}
	return nil
}

// SubRequest is one device's part of a request.
type SubRequest struct {
	IDs    DeviceIDs `json:"ids"`
	Status string    `json:"status"`
}

// UnmarshalJSON accepts "ids" as an array (the docs) or a single object (the SDK).
func (s *SubRequest) UnmarshalJSON(b []byte) error {
	var raw struct {
		IDs    json.RawMessage `json:"ids"`
		Status string          `json:"status"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	s.Status = raw.Status
	s.IDs = nil
	trimmed := strings.TrimSpace(string(raw.IDs))
	switch {
	case trimmed == "" || trimmed == "null":
	case strings.HasPrefix(trimmed, "{"):
		var one DeviceID
		if err := json.Unmarshal(raw.IDs, &one); err != nil {
			return err
		}
		s.IDs = DeviceIDs{one}
	default:
		if err := json.Unmarshal(raw.IDs, &s.IDs); err != nil {
			return err
		}
	}
	return nil
}

// ServicePlan is one entry of GET /api/m2m/v1/plans/{account}.
type ServicePlan struct {
	Name               string     `json:"name"`
	Code               string     `json:"code"`
	SizeKb             int64      `json:"sizeKb,omitempty"`
	CarrierName        string     `json:"carrierName,omitempty"`
	ExtendedAttributes []KeyValue `json:"extendedAttributes,omitempty"`
}

// CallbackRegistration is one registered listener (GET /api/m2m/v1/callbacks/{account}).
type CallbackRegistration struct {
	AccountName string `json:"accountName"`
	ServiceName string `json:"serviceName"`
	URL         string `json:"url"`
	Username    string `json:"username,omitempty"`
	Password    string `json:"password,omitempty"`
}

// RegisterCallbackRequest is the body of POST /api/m2m/v1/callbacks/{account}.
type RegisterCallbackRequest struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// CallbackServiceResponse answers registration and deletion.
type CallbackServiceResponse struct {
	AccountName string `json:"accountName"`
	ServiceName string `json:"serviceName"`
}

// ServiceDeviceProfile is the callback service that carries every profile action's results.
const ServiceDeviceProfile = "DeviceProfileService"

// TokenResponse is the OAuth2 token answer.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// LoginRequest is the body of POST /api/m2m/v1/session/login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoginResponse answers a login (and a logout, with the token just invalidated).
type LoginResponse struct {
	SessionToken string `json:"sessionToken"`
}

// ErrorResponse is ThingSpace's synchronous error envelope.
type ErrorResponse struct {
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// GatewayFault is the WSO2 gateway's error body: {"fault":{"code":"900901",...}}.
type GatewayFault struct {
	Fault struct {
		Code        json.Number `json:"code"`
		Message     string      `json:"message"`
		Description string      `json:"description,omitempty"`
	} `json:"fault"`
}
