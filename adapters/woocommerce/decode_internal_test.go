package woocommerce

import (
	"os"
	"strings"
	"testing"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/adapters/adaptertest"
)

// TestDecodeMatchesEncodingJSON holds adapters.DecodeJSON to encoding/json for the order type on the
// fixtures and their variants: every order the hook reads, and every refusal with its field, is what it
// was with encoding/json alone.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	var bodies [][]byte
	for _, name := range []string{"woocommerce-order-created.json", "woocommerce-order-updated-put-response.json"} {
		raw, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, adaptertest.JSONVariants(raw)...)
	}
	bodies = append(bodies, []byte(`{"id":5}`), []byte(`{"id":5} trailing`), []byte(`{"id":"5"}`), []byte("{\"number\":\"\xff\"}"),
		[]byte(`{"id":5}{"id":6}`), []byte(`null`), []byte(``), []byte(` `))
	adaptertest.SameAsEncodingJSON(t, adapters.DecodeJSON[order], bodies)
}

// TestReturnURLIsTheReplacer holds returnURL to the strings.Replacer it replaces.
func TestReturnURLIsTheReplacer(t *testing.T) {
	templates := []string{"", "{", "}", "{}", "{id}", "{key}", "{id}{key}", "{{id}}", "{i{id}d}", "{ke{key}y}",
		"{id", "{key", "id}", "https://shop.example" + DefaultReturnPath, "https://s/{id}/{id}?k={key}&{x}={KEY}",
		"{ø}{id}ø{key}", "{{{{key}}}}"}
	for _, tpl := range templates {
		for _, v := range [][2]string{{"727", "wc_order_1"}, {"", ""}, {"{key}", "{id}"}, {"1%2F", "a%7Bb%7D"}} {
			want := strings.NewReplacer("{id}", v[0], "{key}", v[1]).Replace(tpl)
			if got := returnURL(tpl, v[0], v[1]); got != want {
				t.Errorf("returnURL(%q, %q, %q) = %q, want %q", tpl, v[0], v[1], got, want)
			}
		}
	}
}
