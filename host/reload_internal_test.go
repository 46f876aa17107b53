package host

import (
	"testing"

	"github.com/kassehq/kasse/host/config"
)

// TestReloadRefusesInsecureNoAuthOffLoopback: the file's server section cannot vouch for loopback at a
// reload (server settings change only at a restart); the running listeners decide.
func TestReloadRefusesInsecureNoAuthOffLoopback(t *testing.T) {
	open := &config.Config{Merchants: map[string]config.Merchant{"dev": {InsecureNoAuth: true}}}
	keyed := &config.Config{Merchants: map[string]config.Merchant{"shop": {}}}
	cases := []struct {
		name    string
		running config.Server
		next    *config.Config
		ok      bool
	}{
		{"loopback", config.Server{Listen: "127.0.0.1:8080", OpsListen: "[::1]:9090"}, open, true},
		{"public listener", config.Server{Listen: ":8080", OpsListen: "127.0.0.1:9090"}, open, false},
		{"public ops listener", config.Server{Listen: "localhost:8080", OpsListen: "0.0.0.0:9090"}, open, false},
		{"keys only", config.Server{Listen: ":8080", OpsListen: "10.0.0.5:9090"}, keyed, true},
	}
	for _, c := range cases {
		if err := checkInsecureNoAuth(c.running, c.next); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}
