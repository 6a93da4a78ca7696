package thingspace

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/fleetform/terraform-provider-thingspace/internal/tsapi"
)

// Paths of the reads and the callback registration.
const (
	PathDeviceListV1 = "/api/m2m/v1/devices/actions/list"
)

// ErrDeviceNotFound is wrapped by GetDevice when the account has no such device.
var ErrDeviceNotFound = errors.New("device not found in the account")

// IsDeviceNotFound reports whether err says the device is not in the account, either from
// GetDevice or from ThingSpace's DeviceNotFound code.
func IsDeviceNotFound(err error) bool {
	return errors.Is(err, ErrDeviceNotFound) || IsCode(err, tsapi.CodeDeviceNotFound)
}

// ListDevices reads one page of the synchronous v1 device list. ThingSpace answers 202 with
// hasMoreData when more pages remain; ListAllDevices follows them.
func (c *Client) ListDevices(ctx context.Context, req tsapi.DeviceListRequest) (*tsapi.DeviceListResponse, error) {
	var out tsapi.DeviceListResponse
	if _, err := c.do(ctx, call{method: http.MethodPost, path: PathDeviceListV1, body: req, kind: kindRead, session: true, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// maxListPages bounds ListAllDevices, so a cursor that never advances cannot loop forever.
const maxListPages = 100000

// ListAllDevices calls fn for every device the v1 list returns, following pages with
// largestDeviceIdSeen (the largest "DeviceId" extended attribute of the previous page).
func (c *Client) ListAllDevices(ctx context.Context, req tsapi.DeviceListRequest, fn func(tsapi.Device) error) error {
	return c.listPages(ctx, req, func(devs []tsapi.Device, _ bool) error {
		for _, d := range devs {
			if err := fn(d); err != nil {
				return err
			}
		}
		return nil
	})
}

// listPages calls fn with every page of the v1 list, and whether more pages follow; an error
// from fn stops the paging and is returned.
func (c *Client) listPages(ctx context.Context, req tsapi.DeviceListRequest, fn func(devs []tsapi.Device, more bool) error) error {
	for page := 0; page < maxListPages; page++ {
		resp, err := c.ListDevices(ctx, req)
		if err != nil {
			return err
		}
		if err := fn(resp.Devices, resp.HasMoreData); err != nil {
			return err
		}
		if !resp.HasMoreData {
			return nil
		}
		var largest int64
		for _, d := range resp.Devices {
			if n, err := strconv.ParseInt(d.Attribute("DeviceId"), 10, 64); err == nil && n > largest {
				largest = n
			}
		}
		if largest <= req.LargestDeviceIDSeen {
			return fmt.Errorf("thingspace: the v1 device list said hasMoreData but its cursor did not advance past %d", req.LargestDeviceIDSeen)
		}
		req.LargestDeviceIDSeen = largest
	}
	return fmt.Errorf("thingspace: the v1 device list did not end after %d pages", maxListPages)
}

// GetDevice reads one device by one identifier from the v1 list. It wraps ErrDeviceNotFound
// when the account has no such device.
func (c *Client) GetDevice(ctx context.Context, account string, id tsapi.DeviceID) (*tsapi.Device, error) {
	if err := requireAccount(account); err != nil {
		return nil, err
	}
	resp, err := c.ListDevices(ctx, tsapi.DeviceListRequest{AccountName: account, DeviceID: &id})
	if err != nil {
		if IsCode(err, tsapi.CodeDeviceNotFound) {
			return nil, fmt.Errorf("%s %s in account %s: %w", id.Kind, id.ID, account, ErrDeviceNotFound)
		}
		return nil, err
	}
	for i := range resp.Devices {
		if resp.Devices[i].DeviceIDs.Matches(tsapi.DeviceIDs{id}) {
			return &resp.Devices[i], nil
		}
	}
	return nil, fmt.Errorf("%s %s in account %s: %w", id.Kind, id.ID, account, ErrDeviceNotFound)
}

// RequestStatus reads the v2 status of a request, with one sub-request per device: the
// polling fallback when no callback relay is configured.
func (c *Client) RequestStatus(ctx context.Context, account, requestID string) (*tsapi.RequestStatusResponse, error) {
	if err := requireAccount(account); err != nil {
		return nil, err
	}
	if requestID == "" {
		return nil, errors.New("thingspace: request id is required")
	}
	var out tsapi.RequestStatusResponse
	path := "/api/m2m/v2/accounts/" + accountPath(account) + "/requests/" + accountPath(requestID) + "/status"
	if _, err := c.do(ctx, call{method: http.MethodGet, path: path, kind: kindRead, session: true, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ServicePlans lists the account's service plans.
func (c *Client) ServicePlans(ctx context.Context, account string) ([]tsapi.ServicePlan, error) {
	if err := requireAccount(account); err != nil {
		return nil, err
	}
	var out []tsapi.ServicePlan
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/m2m/v1/plans/" + accountPath(account), kind: kindRead, session: true, out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// ListCallbacks lists the account's registered callback listeners.
func (c *Client) ListCallbacks(ctx context.Context, account string) ([]tsapi.CallbackRegistration, error) {
	if err := requireAccount(account); err != nil {
		return nil, err
	}
	var out []tsapi.CallbackRegistration
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/api/m2m/v1/callbacks/" + accountPath(account), kind: kindRead, session: true, out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}

// RegisterCallback registers (or replaces) the account's listener for a service.
func (c *Client) RegisterCallback(ctx context.Context, account string, req tsapi.RegisterCallbackRequest) (*tsapi.CallbackServiceResponse, error) {
	if err := requireAccount(account); err != nil {
		return nil, err
	}
	if req.Name == "" || req.URL == "" {
		return nil, errors.New("thingspace: a callback registration needs a service name and a URL")
	}
	var out tsapi.CallbackServiceResponse
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/api/m2m/v1/callbacks/" + accountPath(account), body: req, kind: kindRegistration, session: true, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteCallback removes the account's listener for a service.
func (c *Client) DeleteCallback(ctx context.Context, account, service string) (*tsapi.CallbackServiceResponse, error) {
	if err := requireAccount(account); err != nil {
		return nil, err
	}
	var out tsapi.CallbackServiceResponse
	path := "/api/m2m/v1/callbacks/" + accountPath(account) + "/name/" + accountPath(service)
	if _, err := c.do(ctx, call{method: http.MethodDelete, path: path, kind: kindRegistration, session: true, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}
