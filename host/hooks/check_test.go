package hooks_test

import (
	"errors"
	"testing"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/hooks"
)

// checkStub is an adapter whose Validate answers validate.
type checkStub struct{ validate error }

func (checkStub) Verify(*adapters.Delivery) error                   { return nil }
func (checkStub) Parse(*adapters.Delivery) (*adapters.Event, error) { return &adapters.Event{}, nil }
func (checkStub) Render(adapters.Merchant, adapters.StatusUpdate) ([]adapters.Request, error) {
	return nil, nil
}
func (s checkStub) Validate(adapters.Merchant) error { return s.validate }

func TestCheck(t *testing.T) {
	set := []adapters.Info{
		{ID: "good", New: func() adapters.Adapter { return checkStub{} }},
		{ID: "picky", New: func() adapters.Adapter {
			return checkStub{validate: errors.Join(&adapters.FieldError{Field: "baseUrl", Detail: "is required"},
				errors.New("something else"))}
		}},
	}
	cfg := &config.Config{Merchants: map[string]config.Merchant{
		"a": {Platform: &config.Platform{Kind: "good"}},
		"b": {Platform: &config.Platform{Kind: "picky"}},
		"c": {Platform: &config.Platform{Kind: "missing"}},
		"d": {},
	}}
	err := hooks.Check(set, cfg)
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v", err, err)
	}
	want := "hooks: check adapters: 3 problems:\n" +
		"  /merchants/b/platform/baseUrl: merchant b: is required\n" +
		"  /merchants/b/platform: merchant b: something else\n" +
		`  /merchants/c/platform/kind: no adapter "missing" is registered (registered: good, picky)`
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
	delete(cfg.Merchants, "b")
	delete(cfg.Merchants, "c")
	if err := hooks.Check(set, cfg); err != nil {
		t.Error(err)
	}
}
