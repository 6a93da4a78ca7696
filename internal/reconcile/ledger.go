package reconcile

import (
	"slices"
	"strings"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Observed is what is known of one device right now.
type Observed struct {
	// Device is the v1 device read; nil when the device is not in the account.
	Device *tsapi.Device
	// Ledger is what the relay (or the provider's own journal) records for any of the
	// device's identifiers.
	Ledger Ledger
	// Now is the ledger's clock (the relay's), against which intents' ages are measured.
	Now time.Time
}

// Ledger is the record of a device's requests and their callbacks.
type Ledger struct {
	// OpenRequests are requests that carry the device and have no final callback for it yet.
	OpenRequests []OpenRequest
	// OpenIntents are actions written ahead of their POST whose outcome is still unknown.
	OpenIntents []Intent
	// Events are final callbacks for the device (at least the latest one per action).
	Events []Event
}

// OpenRequest is a request still open for a device.
type OpenRequest struct {
	RequestID string
	Account   string
	Action    tsapi.Action // "" when the ledger does not know it
}

// Intent is an action recorded before its POST whose outcome nobody learned.
type Intent struct {
	ID        string
	Action    tsapi.Action
	BodyHash  string // tsapi.BodyHash of the change it carried
	Attempt   int
	CreatedAt time.Time
	// Sent is the identifiers the intent recorded for this device (sent and known).
	Sent tsapi.DeviceIDs
}

// Event is one final callback (or request-status entry) for a device.
type Event struct {
	Action    tsapi.Action // "" when the request was never registered
	RequestID string
	At        time.Time
	Seq       int64
	// Status is succeeded or failed; "" for an action whose outcome is not known: its answer
	// never came and the device's state settled its intent, which shows that the action took
	// but not everything it did (a download, for instance, but not whether the enable took).
	Status tsapi.CallbackStatus
	// Callback is the callback's body; nil when the event comes from ThingSpace's request
	// status, which carries no profile facts.
	Callback *tsapi.Callback
	// Sent is the identifiers the request sent for the device, when known (request-status
	// events: they tell which profile an enable or download was about).
	Sent tsapi.DeviceIDs
	// Code is the failure's code, when it failed.
	Code string
}

// newer orders events newest first: by time, then by sequence.
func newer(a, b Event) int {
	if c := b.At.Compare(a.At); c != 0 {
		return c
	}
	switch {
	case a.Seq > b.Seq:
		return -1
	case a.Seq < b.Seq:
		return 1
	}
	return 0
}

// Enablement is what the ledger says about whether a profile is enabled.
type Enablement int

// The answers of ProfileEnablement.
const (
	EnablementUnknown Enablement = iota
	Enabled
	NotEnabled
)

// ProfileEnablement says whether the profile with the given ICCID is enabled, from the newest
// event that tells: a callback about that profile that carries its profileStatus (ENABLE, or a
// download or disable status, or a download whose enable failed), ThingSpace's
// Profile.AlreadyEnabled answer, or a callback enabling another profile of the device (only
// one profile is enabled at a time). Events from the request status (no callback body) tell by
// their action and the ICCID they sent. Unknown when no event tells: the device list cannot.
func ProfileEnablement(events []Event, iccid string) Enablement {
	if iccid == "" {
		return EnablementUnknown
	}
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, newer)
	disabledLater := map[string]bool{}
	for _, ev := range sorted {
		if ev.Status == "" {
			if changesEnablement(ev.Action) {
				return EnablementUnknown // an older event no longer tells
			}
			continue
		}
		if ev.Status == tsapi.StatusFailed && tsapi.CodeMatches(ev.Code, tsapi.CodeProfileAlreadyEnabled) && aboutICCID(ev, iccid) {
			return Enabled
		}
		if ev.Callback == nil {
			if e, ok := enablementByAction(ev, iccid); ok {
				return e
			}
			continue
		}
		p := ev.Callback.Profile()
		if p == nil || p.ProfileStatus == "" {
			continue
		}
		ps := tsapi.NormalizeProfileStatus(p.ProfileStatus)
		if aboutICCID(ev, iccid) {
			switch ps {
			case tsapi.ProfileEnabled:
				if ev.Status == tsapi.StatusSucceeded {
					return Enabled
				}
			case tsapi.ProfileDownloaded, tsapi.ProfileDisabled, tsapi.ProfileFailed,
				tsapi.ProfileDeleted, tsapi.ProfileNotDownloaded:
				return NotEnabled
			}
			continue
		}
		other := callbackICCID(ev.Callback)
		if other == "" || ev.Action == "" {
			// A request nobody registered: its action is not known, and its callback may have
			// been delivered again long after newer ones (the relay orders by receipt), so a
			// status it reports for another profile is no evidence about ours.
			continue
		}
		if ps != tsapi.ProfileEnabled {
			// Another profile shown not enabled: an older callback enabling it no longer
			// tells that ours is not (the relay keeps one callback per action, so the one
			// that enabled ours may be missing).
			disabledLater[other] = true
			continue
		}
		if ev.Status == tsapi.StatusSucceeded && !disabledLater[other] {
			return NotEnabled // another profile of the device was enabled after
		}
	}
	return EnablementUnknown
}

// enablementByAction reads a request-status event, which has no profile status. A download
// names the device by its lead ICCID (ThingSpace finds the profile by its plan or SM-SR), so
// a successful download_enable enables the profile being downloaded, and download or
// download_disable leaves it not enabled. enable and disable name the profile's own ICCID; an
// enable of another profile, or an activation of the line (which enables the lead), leaves
// this one not enabled.
//
// A failed download_enable is asked about only once the profile is on the device: the
// download took and the enable did not (ThingSpace's enable-failed), so it reads as not
// enabled and the next decision sends the enable. A failed enable tells nothing here: the
// request status carries no error code, and Profile.AlreadyEnabled is a failure too.
func enablementByAction(ev Event, iccid string) (Enablement, bool) {
	about := ev.Sent.Get(tsapi.KindICCID) == iccid
	if ev.Status == tsapi.StatusFailed && ev.Action == tsapi.ActionDownloadEnable {
		return NotEnabled, true
	}
	if ev.Status != tsapi.StatusSucceeded {
		return EnablementUnknown, false
	}
	if (ev.Action == tsapi.ActionEnable || ev.Action == tsapi.ActionDisable) && ev.Sent.Get(tsapi.KindICCID) == "" {
		// Which profile it enabled or disabled is not known (a request remembered by its id
		// only): older events no longer tell either.
		return EnablementUnknown, true
	}
	switch ev.Action {
	case tsapi.ActionDownloadEnable:
		return Enabled, true
	case tsapi.ActionDownload, tsapi.ActionDownloadDisable:
		return NotEnabled, true
	case tsapi.ActionEnable:
		if about {
			return Enabled, true
		}
		return NotEnabled, true
	case tsapi.ActionDisable:
		if about {
			return NotEnabled, true
		}
	case tsapi.ActionActivate:
		if !about {
			return NotEnabled, true
		}
	}
	return EnablementUnknown, false
}

// changesEnablement reports whether an action can enable or disable a profile other than the
// line's lead one.
func changesEnablement(a tsapi.Action) bool {
	switch a {
	case tsapi.ActionDownloadEnable, tsapi.ActionDownload, tsapi.ActionDownloadDisable,
		tsapi.ActionEnable, tsapi.ActionDisable:
		return true
	}
	return false
}

// aboutICCID reports whether the event concerns the profile with that ICCID.
func aboutICCID(ev Event, iccid string) bool {
	if ev.Callback != nil {
		return callbackICCID(ev.Callback) == iccid
	}
	return ev.Sent.Get(tsapi.KindICCID) == iccid
}

// callbackICCID is the ICCID of the profile a callback is about ("" for device-level ones).
func callbackICCID(cb *tsapi.Callback) string {
	if p := cb.Profile(); p != nil {
		if id := p.DeviceIdentifierCollection.Get(tsapi.KindICCID); id != "" {
			return id
		}
	}
	return cb.DeviceIDs.Get(tsapi.KindICCID)
}

// latestProfileFacts returns the profile status and role of the newest callback about the
// profile with the given ICCID ("" when none tells).
func latestProfileFacts(events []Event, iccid string) (status, role string) {
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, newer)
	for _, ev := range sorted {
		if ev.Callback == nil || (iccid != "" && callbackICCID(ev.Callback) != iccid) {
			continue
		}
		if p := ev.Callback.Profile(); p != nil && (p.ProfileStatus != "" || p.ProfileRole != "") {
			if p.ProfileStatus != "" {
				status = string(tsapi.NormalizeProfileStatus(p.ProfileStatus))
			}
			return status, strings.ToUpper(p.ProfileRole)
		}
	}
	return "", ""
}
