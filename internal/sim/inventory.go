package sim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Profile slots of every device: the Verizon US (LEAD) profile, one Global profile and one local
// (SM-SR, limited release) profile. Each has its own ICCID from the start; the Global and local
// ones are "not downloaded" until a download action.
const (
	profLead    = 0
	profGlobal  = 1
	profLocal   = 2
	numProfiles = 3
)

// Plan types.
const (
	PlanUS     = "US"
	PlanGlobal = "Global"
)

// Plan is one service plan of the catalogue (GET /sim/v1/plans): name equals code.
type Plan struct {
	Name string `json:"name"`
	Code string `json:"code"`
	Type string `json:"type"`
	// SizeKb is the plan's allowance, shown by GET /api/m2m/v1/plans/{account}.
	SizeKb int64 `json:"-"`
}

func defaultPlans() []Plan {
	return []Plan{
		{Name: "M2M4GB", Code: "M2M4GB", Type: PlanUS, SizeKb: 4 << 20},
		{Name: "M2M10GB", Code: "M2M10GB", Type: PlanUS, SizeKb: 10 << 20},
		{Name: "M2M50GB", Code: "M2M50GB", Type: PlanUS, SizeKb: 50 << 20},
		{Name: "GLOBAL1GB", Code: "GLOBAL1GB", Type: PlanGlobal, SizeKb: 1 << 20},
		{Name: "GLOBAL5GB", Code: "GLOBAL5GB", Type: PlanGlobal, SizeKb: 5 << 20},
	}
}

// lineState is a profile's service state. Suspension is kept as flags on the profile so that
// device_resume can leave individually suspended profiles suspended.
type lineState uint8

const (
	statePreActive lineState = iota
	stateActive
	stateSuspended // only ever derived (see profile.effState), never stored
	stateDeactive
)

// profStatus is a profile's status on the eUICC.
type profStatus uint8

const (
	psNotDownloaded profStatus = iota
	psDownloadDisable
	psEnable
	psDisable
	psDelete
)

func (p profStatus) String() string {
	switch p {
	case psDownloadDisable:
		return "DOWNLOAD_DISABLE"
	case psEnable:
		return "ENABLE"
	case psDisable:
		return "DISABLE"
	case psDelete:
		return "DELETE"
	}
	return "NOT_DOWNLOADED"
}

// downloaded reports whether the profile is on the eUICC.
func (p profStatus) downloaded() bool {
	return p == psDownloadDisable || p == psEnable || p == psDisable
}

type profile struct {
	iccid        string
	plan         string
	smsrOid      string
	status       profStatus
	state        lineState // pre-active, active or deactive
	suspended    bool      // by profile_suspend
	devSuspended bool      // by device_suspend
}

func (p *profile) effState() lineState {
	if p.state == stateActive && (p.suspended || p.devSuspended) {
		return stateSuspended
	}
	return p.state
}

type device struct {
	ord         int32
	eid, imei   string
	mdn         string // reserved number; shown once assigned
	mdnAssigned bool
	online      bool
	activatedAt int64 // unix seconds of the last activation
	profiles    [numProfiles]profile
	inflight    int32  // requests accepted and not yet answered by callback
	pending     string // PENDING_* shown by the v1 list while inflight > 0, or ""
}

func (d *device) lead() *profile { return &d.profiles[profLead] }

// enabled returns the index of the enabled profile, or -1.
func (d *device) enabled() int {
	for k := range d.profiles {
		if d.profiles[k].status == psEnable {
			return k
		}
	}
	return -1
}

// shown returns the profile the admin rows describe: the enabled one, else the LEAD.
func (d *device) shown() int {
	if k := d.enabled(); k >= 0 {
		return k
	}
	return profLead
}

func (d *device) msisdn() string {
	if !d.mdnAssigned {
		return ""
	}
	return "1" + d.mdn
}

// profileOf returns the slot of an ICCID of this device, or -1.
func (d *device) profileOf(iccid string) int {
	if iccid == "" {
		return -1
	}
	for k := range d.profiles {
		if d.profiles[k].iccid == iccid {
			return k
		}
	}
	return -1
}

// enable makes profile k the only enabled one.
func (d *device) enable(k int) {
	for j := range d.profiles {
		if j != k && d.profiles[j].status == psEnable {
			d.profiles[j].status = psDisable
		}
	}
	d.profiles[k].status = psEnable
}

// fallBackToLead enables the LEAD profile when no profile is enabled any more (the bootstrap
// profile takes over after a local/Global profile is disabled, deleted or deactivated).
func (d *device) fallBackToLead() {
	if d.enabled() < 0 && d.lead().state != statePreActive && d.lead().status.downloaded() {
		d.lead().status = psEnable
	}
}

// deactivateProfiles is the line deactivated (a device_deactivate of the LEAD profile, or the
// state set outside): every active profile becomes deactive, none stays suspended or enabled.
func (d *device) deactivateProfiles() {
	for k := range d.profiles {
		p := &d.profiles[k]
		if p.state == stateActive {
			p.state = stateDeactive
		}
		p.suspended, p.devSuspended = false, false
		if p.status == psEnable {
			p.status = psDisable
		}
	}
}

func roleOf(k int) string {
	if k == profLead {
		return "LEAD"
	}
	return "LOCAL"
}

func typeOf(k int) string {
	switch k {
	case profGlobal:
		return "Global"
	case profLocal:
		return "Local"
	}
	return "US"
}

// lineState is the device's service state: the LEAD line's, except that an active device whose
// enabled Global/local profile is suspended has no service and shows as suspended (so that a
// profile_suspend of a Global profile is visible in the v1 list's state, as device_suspend is).
func (d *device) lineState() lineState {
	st := d.lead().effState()
	if st == stateActive {
		if k := d.enabled(); k > profLead && d.profiles[k].effState() == stateSuspended {
			return stateSuspended
		}
	}
	return st
}

// deviceState is the normalised state of the device, pending included, in the vocabulary of
// tsapi.DeviceState.
func (d *device) deviceState() tsapi.DeviceState {
	if d.pending != "" {
		return tsapi.NormalizeState(d.pending)
	}
	return normState(d.lineState())
}

func normState(s lineState) tsapi.DeviceState {
	switch s {
	case stateActive:
		return tsapi.StateActive
	case stateSuspended:
		return tsapi.StateSuspended
	case stateDeactive:
		return tsapi.StateDeactive
	}
	return tsapi.StatePreActive
}

// v1State spells a state as the v1 list does ("active", "suspend", "deactive", "pre-active").
func v1State(s lineState) string {
	switch s {
	case stateActive:
		return "active"
	case stateSuspended:
		return "suspend"
	case stateDeactive:
		return "deactive"
	}
	return "pre-active"
}

// cbState spells a state as callbacks do ("ACTIVE", "SUSPEND", ...).
func cbState(s lineState) string {
	switch s {
	case stateActive:
		return "ACTIVE"
	case stateSuspended:
		return "SUSPEND"
	case stateDeactive:
		return "DEACTIVE"
	}
	return "PRE_ACTIVE"
}

// seedBase derives the identifier base numbers from the seed.
func seedBase(seed int64) uint64 { return mix64(uint64(seed)*0x9e3779b97f4a7c15 + 0x7f4a7c15) }

// buildInventory generates the devices. Callers hold s.mu (or own s).
func (s *Simulator) buildInventory() {
	n := s.opts.Devices
	base := seedBase(s.opts.Seed)
	s.devices = make([]device, n)
	s.index = make(map[string]int32, n*6)
	firstUS := s.plans[0].Code
	now := time.Now().Unix()
	for i := 0; i < n; i++ {
		id := makeIdentity(base, i)
		d := &s.devices[i]
		d.ord = int32(i)
		d.eid, d.imei, d.mdn = id.eid, id.imei, id.mdn
		d.online = true
		for k := range d.profiles {
			d.profiles[k].iccid = id.iccids[k]
			s.index[id.iccids[k]] = int32(i)
		}
		s.index[id.eid] = int32(i)
		s.index[id.imei] = int32(i)
		s.index[id.mdn] = int32(i)
		s.index["1"+id.mdn] = int32(i)
		if i < s.opts.Preactivated {
			l := d.lead()
			l.state, l.status, l.plan = stateActive, psEnable, firstUS
			d.mdnAssigned = true
			d.activatedAt = now
		}
	}
}

// lookup returns the device an identifier names, or nil.
func (s *Simulator) lookup(id string) *device {
	if i, ok := s.index[id]; ok {
		return &s.devices[i]
	}
	return nil
}

// DeviceView is one row of GET /sim/v1/devices. ICCID, ServicePlan, ProfileStatus and
// ProfileRole describe the enabled profile (the LEAD profile while none is enabled).
type DeviceView struct {
	EID           string        `json:"eid"`
	ICCID         string        `json:"iccid"`
	IMEI          string        `json:"imei"`
	MDN           string        `json:"mdn"`
	MSISDN        string        `json:"msisdn"`
	State         string        `json:"state"`
	ProfileStatus string        `json:"profileStatus"`
	ProfileRole   string        `json:"profileRole"`
	ServicePlan   string        `json:"servicePlan"`
	AccountName   string        `json:"accountName"`
	Online        bool          `json:"online"`
	OpenRequests  int           `json:"openRequests"`
	Profiles      []ProfileView `json:"profiles"`
}

// ProfileView is one profile of a DeviceView. State is the profile's own service state
// (pre-active, active, suspended, deactive).
type ProfileView struct {
	ICCID       string `json:"iccid"`
	Role        string `json:"role"`
	Status      string `json:"status"`
	ServicePlan string `json:"servicePlan"`
	Type        string `json:"type"`
	State       string `json:"state"`
	SmsrOid     string `json:"smsrOid,omitempty"`
}

func (s *Simulator) view(d *device) DeviceView {
	k := d.shown()
	p := &d.profiles[k]
	v := DeviceView{
		EID: d.eid, ICCID: p.iccid, IMEI: d.imei, MSISDN: d.msisdn(),
		State: string(d.deviceState()), ProfileStatus: p.status.String(), ProfileRole: roleOf(k),
		ServicePlan: p.plan, AccountName: s.opts.Account, Online: d.online,
		OpenRequests: int(d.inflight),
	}
	if d.mdnAssigned {
		v.MDN = d.mdn
	}
	v.Profiles = make([]ProfileView, numProfiles)
	for j := range d.profiles {
		q := &d.profiles[j]
		v.Profiles[j] = ProfileView{ICCID: q.iccid, Role: roleOf(j), Status: q.status.String(),
			ServicePlan: q.plan, Type: typeOf(j), State: string(normState(q.effState())), SmsrOid: q.smsrOid}
	}
	return v
}

// Devices returns every device of the inventory, in inventory order.
func (s *Simulator) Devices() []DeviceView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DeviceView, len(s.devices))
	for i := range s.devices {
		out[i] = s.view(&s.devices[i])
	}
	return out
}

// Device returns the device with the given identifier (EID, ICCID, IMEI, MDN or MSISDN).
func (s *Simulator) Device(id string) (DeviceView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.lookup(id)
	if d == nil {
		return DeviceView{}, false
	}
	return s.view(d), true
}

// Plans returns the service-plan catalogue, US plans first.
func (s *Simulator) Plans() []Plan { return append([]Plan(nil), s.plans...) }

// Account returns the simulated account name.
func (s *Simulator) Account() string { return s.opts.Account }

// DevicePatch changes a device outside the API (drift made by someone else). Nil fields are
// left alone. State is one of active, suspended, deactive, pre-active; ServicePlan a plan code
// (a US plan sets the LEAD profile's plan, a Global plan the Global profile's); Online takes
// the device off or back on the network.
type DevicePatch struct {
	State       *string `json:"state,omitempty"`
	ServicePlan *string `json:"servicePlan,omitempty"`
	Online      *bool   `json:"online,omitempty"`
}

// ErrNoDevice is returned by UpdateDevice for an unknown identifier.
var ErrNoDevice = errors.New("no such device")

// UpdateDevice applies a DevicePatch to the device with the given identifier.
func (s *Simulator) UpdateDevice(id string, patch DevicePatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.lookup(id)
	if d == nil {
		return ErrNoDevice
	}
	var plan Plan
	if patch.ServicePlan != nil {
		var ok bool
		if plan, ok = s.planByCode[*patch.ServicePlan]; !ok {
			return fmt.Errorf("unknown service plan %q", *patch.ServicePlan)
		}
	}
	if patch.State != nil {
		l := d.lead()
		switch tsapi.NormalizeState(*patch.State) {
		case tsapi.StateActive:
			// Resumed outside: every profile, or an enabled Global profile suspended on its own
			// would keep the device showing suspended.
			if l.state != stateActive {
				s.activateLead(d, l.plan)
			}
			for k := range d.profiles {
				d.profiles[k].suspended, d.profiles[k].devSuspended = false, false
			}
		case tsapi.StateSuspended:
			// The line only (a device_suspend would suspend every active profile): the
			// provider's tests of drift rely on the Global profile showing active.
			if l.state != stateActive {
				s.activateLead(d, l.plan)
			}
			l.devSuspended = true
		case tsapi.StateDeactive:
			d.deactivateProfiles()
			l.state = stateDeactive
			if l.status == psNotDownloaded {
				l.status = psDisable
			}
		case tsapi.StatePreActive:
			id := d.profiles
			*d = device{ord: d.ord, eid: d.eid, imei: d.imei, mdn: d.mdn, online: d.online,
				inflight: d.inflight, pending: d.pending}
			for k := range d.profiles {
				d.profiles[k].iccid = id[k].iccid
			}
		default:
			return fmt.Errorf("state %q: want active, suspended, deactive or pre-active", *patch.State)
		}
	}
	if patch.ServicePlan != nil {
		if plan.Type == PlanGlobal {
			d.profiles[profGlobal].plan = plan.Code
		} else {
			d.lead().plan = plan.Code
		}
	}
	if patch.Online != nil {
		d.online = *patch.Online
	}
	return nil
}

// activateLead activates the LEAD profile (the line) with plan (the first US plan if empty).
// Callers hold s.mu.
func (s *Simulator) activateLead(d *device, plan string) {
	if plan == "" {
		plan = s.plans[0].Code
	}
	l := d.lead()
	l.state, l.plan = stateActive, plan
	l.suspended, l.devSuspended = false, false
	d.mdnAssigned = true
	d.activatedAt = time.Now().Unix()
	d.enable(profLead)
}

// deviceCredential is the per-device credential callbacks carry: unique per device and stable.
func (s *Simulator) deviceCredential(d *device) *tsapi.DeviceCredential {
	user := d.mdn + "@vzw4g.com"
	h := mix64(seedBase(s.opts.Seed) ^ uint64(d.ord)*0x100000001b3)
	return &tsapi.DeviceCredential{Username: user, Password: strconv.FormatUint(h%1_000_000_000_000, 36)}
}

// ipAddress is the device's address on the network.
func ipAddress(d *device) string {
	n := int(d.ord)
	return fmt.Sprintf("10.%d.%d.%d", 64+(n>>16)&63, (n>>8)&255, n&255)
}

// v1DeviceID is the numeric device id ThingSpace pages the v1 list by (largestDeviceIdSeen).
func v1DeviceID(d *device) int64 { return 1_000_001 + int64(d.ord) }

// v1Device renders a device as the synchronous v1 list does: identifiers, connection, carrier
// information (the Verizon line first, then one entry per activated Global/local profile) and
// no profile status or role. The LEAD (line) ICCID is the first "iccid" identifier, so that it
// stays stable whichever profile is enabled; the ICCIDs of Global/local profiles that are
// downloaded or active follow it, so a lookup by any of them finds itself in deviceIds.
func (s *Simulator) v1Device(d *device) tsapi.Device {
	l := d.lead()
	ids := tsapi.DeviceIDs{{Kind: "eid", ID: d.eid}, {Kind: "iccid", ID: l.iccid}}
	for j := profGlobal; j < numProfiles; j++ {
		if p := &d.profiles[j]; p.state != statePreActive || p.status.downloaded() {
			ids = append(ids, tsapi.DeviceID{Kind: "iccid", ID: p.iccid})
		}
	}
	ids = append(ids, tsapi.DeviceID{Kind: "imei", ID: d.imei})
	if d.mdnAssigned {
		ids = append(ids, tsapi.DeviceID{Kind: "mdn", ID: d.mdn}, tsapi.DeviceID{Kind: "msisdn", ID: d.msisdn()})
	}
	state := v1State(d.lineState())
	if d.pending != "" {
		state = d.pending
	}
	ci := []tsapi.CarrierInformation{{CarrierName: "Verizon Wireless", ServicePlan: l.plan, State: state}}
	for j := profGlobal; j < numProfiles; j++ {
		p := &d.profiles[j]
		if p.state == statePreActive && !p.status.downloaded() {
			continue
		}
		name := "Verizon Global"
		if j == profLocal {
			name = "Local"
		}
		ci = append(ci, tsapi.CarrierInformation{CarrierName: name, ServicePlan: p.plan, State: v1State(p.effState())})
	}
	out := tsapi.Device{
		AccountName:         s.opts.Account,
		CarrierInformations: ci,
		Connected:           d.online && d.lineState() == stateActive,
		CreatedAt:           "2026-01-05T10:42:15-05:00",
		DeviceIDs:           ids,
		ExtendedAttributes:  []tsapi.KeyValue{{Key: "DeviceId", Value: strconv.FormatInt(v1DeviceID(d), 10)}},
		GroupNames:          []string{"Default: " + s.opts.Account},
		IPAddress:           ipAddress(d),
	}
	if d.activatedAt > 0 {
		t := time.Unix(d.activatedAt, 0).UTC().Format("2006-01-02T15:04:05-07:00")
		out.LastActivationBy = s.opts.Username
		out.LastActivationDate = t
		out.LastConnectionDate = t
	}
	return out
}

// matchesIDFilter reports whether identifier kind of d contains the string.
func matchesIDFilter(d *device, kind, contains string) bool {
	var vals []string
	switch tsapi.NormalizeKind(kind) {
	case tsapi.KindEID:
		vals = []string{d.eid}
	case tsapi.KindICCID:
		vals = []string{d.profiles[0].iccid, d.profiles[1].iccid, d.profiles[2].iccid}
	case tsapi.KindIMEI:
		vals = []string{d.imei}
	case tsapi.KindMDN:
		if d.mdnAssigned {
			vals = []string{d.mdn}
		}
	case tsapi.KindMSISDN:
		vals = []string{d.msisdn()}
	default:
		return false
	}
	for _, v := range vals {
		if v != "" && strings.Contains(v, contains) {
			return true
		}
	}
	return false
}
