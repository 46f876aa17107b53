package host_test

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestConfigReload changes the config file under a running kasse: a valid change takes effect without a
// restart, and a file that fails its schema (or names a plugin that is not loaded) is refused while the
// running configuration keeps serving.
func TestConfigReload(t *testing.T) {
	s := newStack(t, stackOptions{})
	orig, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	body := checkoutBody(49900)
	body["returnUrl"] = "http://other-shop.test/thanks"
	expectProblem(t, s.do("POST", "/v1/checkouts", body), http.StatusUnprocessableEntity, "/returnUrl")

	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(s.configPath, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	allowOther := strings.Replace(string(orig), `returnUrlPrefixes: ["http://shop.test/"]`,
		`returnUrlPrefixes: ["http://shop.test/", "http://other-shop.test/"]`, 1)
	write(allowOther)
	if !s.kasse.ReloadConfig() {
		t.Fatal("valid config change was not activated")
	}
	if res := s.do("POST", "/v1/checkouts", body); res.status != http.StatusCreated {
		t.Fatalf("after reload: %d %s", res.status, res.raw)
	}

	for name, broken := range map[string]string{
		"schema violation":  strings.Replace(allowOther, `merchantSerialNumber: "123456"`, `merchantSerialNumber: "12"`, 1),
		"plugin not loaded": strings.Replace(allowOther, `plugin: vipps-ecom`, `plugin: vipps-epayment`, 1),
		"not YAML":          "merchants: [",
	} {
		write(broken)
		if s.kasse.ReloadConfig() {
			t.Fatalf("%s: broken config was activated", name)
		}
		if res := s.do("POST", "/v1/checkouts", body); res.status != http.StatusCreated {
			t.Fatalf("%s: running config lost: %d %s", name, res.status, res.raw)
		}
	}
}
