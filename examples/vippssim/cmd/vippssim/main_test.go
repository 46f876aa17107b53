package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
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

// Test_main runs the command as its doc comment shows, on a free port.
func Test_main(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "127.0.0.1:0", "-allow-http-loopback", "-seed", "42",
			"-faults", `{"callbacks":{"drop":1},"latency":"1ms"}`}, &logs, func(a string) { addrc <- a })
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
	demo := vippssim.DemoTenant()

	post := func(path string, hdr map[string]string, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := post("/accesstoken/get", map[string]string{
		"client_id": demo.ClientID, "client_secret": demo.ClientSecret, "Ocp-Apim-Subscription-Key": demo.SubscriptionKey,
	}, "")
	if code != 200 {
		t.Fatalf("token: %d %s", code, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	code, body = post("/ecomm/v2/payments", map[string]string{
		"Authorization": "Bearer " + tok.AccessToken, "Ocp-Apim-Subscription-Key": demo.SubscriptionKey, "Content-Type": "application/json",
	}, `{"customerInfo":{},"merchantInfo":{"merchantSerialNumber":"123456","callbackPrefix":"http://127.0.0.1:1/cb","fallBack":"http://127.0.0.1:1/back","authToken":"very-secret-auth"},
	    "transaction":{"orderId":"cmd-1","amount":1000,"transactionText":"x"}}`)
	if code != 200 || !strings.Contains(string(body), `"url":"`+base+`/dwo-api-application/v1/deeplink/vippsgateway?v=2&token=`) {
		t.Fatalf("initiate: %d %s", code, body)
	}
	resp, err := http.Get(base + "/_sim/faults")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(got), `"drop":1,`) || !strings.Contains(string(got), `"latency":"1ms","seed":42`) {
		t.Errorf("faults from the flags: %s", got)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown")
	}
	out := logs.String()
	// No -v: a summary line per money operation, no line for successful requests.
	if !strings.Contains(out, "msg=listening component=vippssim addr="+addr) ||
		!strings.Contains(out, "msg=initiate component=vippssim api=ecom order=cmd-1 amount=1000") ||
		strings.Contains(out, "msg=request") || strings.Contains(out, "API thawed") {
		t.Errorf("logs:\n%s", out)
	}
	for _, secret := range []string{demo.ClientSecret, tok.AccessToken, "very-secret-auth", "token="} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain a secret (%q):\n%s", secret, out)
		}
	}
}

func TestRunFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-addr", "256.0.0.1:1"}, {"-addr", "127.0.0.1:0", "-public-url", "ftp://x"},
		{"-addr", "127.0.0.1:0", "-faults", `{"callbacks":{"drop":2}}`}, {"-addr", "127.0.0.1:0", "-faults", `{"x":1}`},
		{"-log-format", "xml"}, {"-log-level", "loud"}} {
		var logs syncBuffer
		if err := run(context.Background(), args, &logs, nil); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
}
