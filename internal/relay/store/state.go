package store

import (
	"encoding/json"
	"fmt"
	"slices"
)

// RequestState is a request's state from its registered devices (expected), how many of them
// are terminal, and whether any terminal callback arrived (what decides for a request nobody
// registered, expected 0).
func RequestState(expected, terminalCount int, anyTerminal bool) string {
	switch {
	case expected > 0 && terminalCount >= expected:
		return StateTerminal
	case terminalCount > 0 || (expected == 0 && anyTerminal):
		return StatePartial
	}
	return StatePending
}

// DeviceProgress is one registered device's status as callbacks, in seq order, fold into it.
type DeviceProgress struct {
	Status   string
	Terminal bool
	Seq      int64 // the callback that set Status
}

// Apply folds one callback into the device and reports whether it changed: a terminal callback
// always sets the status (the last terminal one by sequence wins), a progress callback only
// while the device is not terminal (progress never downgrades a terminal device).
func (d *DeviceProgress) Apply(seq int64, status string, terminal bool) bool {
	switch {
	case terminal:
		d.Status, d.Terminal, d.Seq = status, true, seq
		return true
	case !d.Terminal:
		d.Status, d.Seq = status, seq
		return true
	}
	return false
}

// Registered derives the states of a registration's devices from the callbacks stored before
// it (Register counts callbacks that arrived first).
type Registered struct {
	Devices     []DeviceProgress // one per registered device, in order
	AnyTerminal bool             // a terminal callback was folded
	byKey       map[DeviceKey][]int
}

// NewRegistered starts the registered devices devs (normalised), each pending.
func NewRegistered(devs [][]DeviceKey) *Registered {
	r := &Registered{Devices: make([]DeviceProgress, len(devs)), byKey: map[DeviceKey][]int{}}
	for i, d := range devs {
		r.Devices[i].Status = StatePending
		for _, k := range d {
			r.byKey[k] = append(r.byKey[k], i)
		}
	}
	return r
}

// fold applies a stored callback, in seq order, to the devices it names by any identifier, or
// to every device when it names none.
func (r *Registered) fold(seq int64, status string, terminal bool, keys []DeviceKey) {
	r.AnyTerminal = r.AnyTerminal || terminal
	if len(keys) == 0 {
		for i := range r.Devices {
			r.Devices[i].Apply(seq, status, terminal)
		}
		return
	}
	var hit []int
	for _, k := range keys {
		for _, i := range r.byKey[k] {
			if !slices.Contains(hit, i) {
				hit = append(hit, i)
			}
		}
	}
	for _, i := range hit {
		r.Devices[i].Apply(seq, status, terminal)
	}
}

// FoldRow reads one stored callback with scan (seq, status, terminal and the devices column,
// as KeysJSON wrote it) and folds it.
func (r *Registered) FoldRow(scan func(dest ...any) error) error {
	var seq int64
	var status, devices string
	var terminal bool
	if err := scan(&seq, &status, &terminal, &devices); err != nil {
		return err
	}
	var keys []DeviceKey
	if err := json.Unmarshal([]byte(devices), &keys); err != nil {
		return fmt.Errorf("callback %d devices: %w", seq, err)
	}
	r.fold(seq, status, terminal, keys)
	return nil
}

// TerminalCount counts the terminal devices.
func (r *Registered) TerminalCount() int {
	n := 0
	for _, d := range r.Devices {
		if d.Terminal {
			n++
		}
	}
	return n
}
