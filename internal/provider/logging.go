package provider

import (
	"context"
	"log/slog"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/fleetform/terraform-provider-thingspace/internal/thingspace"
)

// withLogger returns ctx with a slog logger that forwards the API client's logs to tflog, so
// they appear in TF_LOG output with the provider's other logs.
func withLogger(ctx context.Context) context.Context {
	return thingspace.WithLogger(ctx, slog.New(tflogHandler{ctx: ctx}))
}

// tflogHandler is a slog.Handler writing to tflog.
type tflogHandler struct {
	ctx   context.Context
	attrs []slog.Attr
}

func (h tflogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h tflogHandler) Handle(_ context.Context, r slog.Record) error {
	fields := make(map[string]any, r.NumAttrs()+len(h.attrs))
	for _, a := range h.attrs {
		fields[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		fields[a.Key] = a.Value.Any()
		return true
	})
	switch {
	case r.Level >= slog.LevelError:
		tflog.Error(h.ctx, r.Message, fields)
	case r.Level >= slog.LevelWarn:
		tflog.Warn(h.ctx, r.Message, fields)
	case r.Level >= slog.LevelInfo:
		tflog.Info(h.ctx, r.Message, fields)
	default:
		tflog.Debug(h.ctx, r.Message, fields)
	}
	return nil
}

func (h tflogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return tflogHandler{ctx: h.ctx, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h tflogHandler) WithGroup(string) slog.Handler { return h }
