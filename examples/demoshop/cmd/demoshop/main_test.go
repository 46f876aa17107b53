package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const secretKey = "s3cret-demo-key"

// Test_main runs the command as its doc comment shows, on a free port, against a minimal kasse that
// checks the API key from the environment.
func Test_main(t *testing.T) {
	var authMu sync.Mutex
	var gotAuth, gotPath string
	kasse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authMu.Lock()
		gotAuth, gotPath = r.Header.Get("Authorization"), r.Method+" "+r.URL.Path
		authMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"c1","state":"pending","redirectUrl":"http://127.0.0.1:8090/landing?token=t"}`)
	}))
	defer kasse.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	env := map[string]string{apiKeyEnv: secretKey}
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-kasse", kasse.URL, "-merchant", "demo"},
			func(k string) string { return env[k] }, &logs, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not listening after 5 s")
	}
	base := "http://" + addr

	resp, err := http.Get(base + "/products/SOCK-42")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Pay with Vipps") {
		t.Fatalf("product page: %d\n%s", resp.StatusCode, body)
	}

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = client.PostForm(base+"/checkout", url.Values{"sku": {"SOCK-42"}, "quantity": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "http://127.0.0.1:8090/landing?token=t" {
		t.Fatalf("checkout: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	authMu.Lock()
	if gotAuth != "Bearer "+secretKey || gotPath != "POST /v1/checkouts" {
		t.Errorf("kasse got %s with Authorization %q", gotPath, gotAuth)
	}
	authMu.Unlock()

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown within 10 s")
	}
	out := logs.String()
	if strings.Contains(out, secretKey) {
		t.Errorf("the API key is logged:\n%s", out)
	}
	for _, want := range []string{"demoshop: listening", "addr=" + addr, "public_url=" + base, "api_key_set=true"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestRunWithoutAPIKeyWarns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(string) string { return "" }, &logs,
			func(string) { cancel() })
	}()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
	if out := logs.String(); !strings.Contains(out, "KASSE_DEMO_API_KEY is not set") || !strings.Contains(out, "api_key_set=false") {
		t.Errorf("no warning about the missing key:\n%s", out)
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-api-key", "x"}, "parse flags: flag provided but not defined: -api-key"},
		{[]string{"extra"}, "unexpected arguments: [extra]"},
		{[]string{"-addr", "127.0.0.1:0", "-kasse", "kasse:8080"}, "demoshop: kasse url"},
		{[]string{"-addr", "127.0.0.1:0", "-merchant", "Demo"}, `demoshop: merchant "Demo"`},
		{[]string{"-addr", "127.0.0.1:0", "-public-url", "shop"}, "demoshop: public url"},
		{[]string{"-addr", "256.0.0.1:1"}, "listen:"},
		{[]string{"-log-format", "xml"}, `-log-format "xml": must be text or json`},
		{[]string{"-log-level", "loud"}, "-log-level:"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := run(context.Background(), tc.args, func(string) string { return secretKey }, io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
