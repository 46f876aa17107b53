package host_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kassehq/kasse/examples/demoshop"
	"github.com/kassehq/kasse/plugin/plugintest"
)

// browser drives a headless Debian Chromium for one test and writes screenshots where the test run keeps
// its artifacts: $KASSE_TEST_ARTIFACTS, or <repo>/testresults/screenshots.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
	n     int
}

// newBrowser starts Chromium with the flags this environment needs (no sandbox as root, no outside
// network at start) and a fresh profile. A machine without Chromium fails the test: CI installs it.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (%v): install it with `apt-get install -y chromium` (.ci/run does)", err)
	}
	dir := os.Getenv("KASSE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(plugintest.ModuleRoot(t), "testresults", "screenshots")
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.WindowSize(1024, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, shots: dir}
}

// do runs steps with a deadline, so that a page that never comes fails the test instead of hanging it.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + what)
		b.t.Fatalf("%s: %v", what, err)
	}
}

// navigate runs steps that lead to a new page (a click on a submit button, through any redirects) and
// waits until it has loaded; it returns the new page's URL.
func (b *browser) navigate(what string, steps ...chromedp.Action[chromedp.Void]) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		b.shot("failed-" + what)
		b.t.Fatalf("%s: %v", what, err)
	}
	if resp.Status >= 400 {
		b.shot("failed-" + what)
		b.t.Fatalf("%s: %s answered %d", what, resp.URL, resp.Status)
	}
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	return loc
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.shot("failed-text")
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browser) exists(sel string) bool {
	b.t.Helper()
	ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool]("document.querySelector("+jsString(sel)+") !== null"))
	if err != nil {
		b.t.Fatalf("query %s: %v", sel, err)
	}
	return ok
}

func jsString(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// shot writes a numbered full-page screenshot.
func (b *browser) shot(name string) {
	b.n++
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG; less is JPEG
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(b.shots, strings.ReplaceAll(time.Now().Format("150405")+"-"+twoDigits(b.n)+"-"+name, "/", "_")+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Errorf("write screenshot: %v", err)
	}
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + string(rune('0'+n))
	}
	return string(rune('0'+n/10)) + string(rune('0'+n%10))
}

// startShop serves the demo shop against the stack's kasse, asking kasse whether Express is on, and lets
// the merchant's checkouts return to it.
func startShop(t *testing.T, s *stack) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	shopURL := "http://" + l.Addr().String()
	shop, err := demoshop.New(demoshop.Config{KasseURL: s.baseURL, Merchant: "demo", APIKey: apiKey,
		PublicURL: shopURL, ExpressFromKasse: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: shop.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	raw, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), `returnUrlPrefixes: ["http://shop.test/"]`,
		`returnUrlPrefixes: ["http://shop.test/", "`+shopURL+`/"]`, 1)
	if err := os.WriteFile(s.configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if !s.kasse.ReloadConfig() {
		t.Fatal("config with the shop's return URL was not activated")
	}
	return shopURL
}

// TestBrowserFlows clicks through the demo shop, the Vipps simulator's pages and kasse in a real headless
// Chromium: a regular payment and its capture while Express Checkout is off (no Express button), then,
// after expressCheckout is switched on in the config file and picked up by kasse's file poll (no restart,
// no reload call), the Express button, the address and shipping pages, and the thank-you and order pages
// with the customer, the address and the shipping.
func TestBrowserFlows(t *testing.T) {
	b := newBrowser(t)
	s := newStack(t, stackOptions{})
	requireExpressRoutes(t, s)
	shopURL := startShop(t, s)

	// Regular flow, Express off.
	b.navigate("open product", chromedp.Navigate(shopURL+"/products/SOCK-42"))
	if b.exists(`button[value="express"]`) {
		t.Fatal("the Express button is shown while expressCheckout is off")
	}
	b.shot("product-express-off")
	b.do("phone", chromedp.SetValue(chromedp.CSS("#phone"), "91234567"))
	loc := b.navigate("pay with vipps", chromedp.Click(chromedp.CSS(`button[value="vipps"]`)))
	if !strings.HasPrefix(loc, s.simURL+"/") {
		t.Fatalf("Pay with Vipps went to %s, want the Vipps simulator", loc)
	}
	b.shot("vipps-landing")
	b.navigate("landing next", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.shot("vipps-confirm")
	loc = b.navigate("confirm payment", chromedp.Click(chromedp.CSS(`button[value="confirm"]`)))
	if !strings.HasPrefix(loc, shopURL+"/orders/1001/thanks") {
		t.Fatalf("after paying the browser is at %s", loc)
	}
	if h := b.text("h1"); h != "Thank you for your order" {
		t.Fatalf("thank-you page heading %q", h)
	}
	if st := b.text(".state"); !strings.Contains(st, "Payment authorized") {
		t.Fatalf("thank-you page says %q", st)
	}
	b.shot("thanks")
	b.navigate("order page", chromedp.Navigate(shopURL+"/orders/1001"))
	b.navigate("ship", chromedp.Click(chromedp.CSS(`form[action$="/capture"] button`)))
	if r := b.text("#result"); !strings.Contains(r, "Captured all that was left") {
		t.Fatalf("capture result %q", r)
	}
	b.shot("order-captured")

	// Switch Express on in the file only; kasse's poll (every second) picks it up.
	raw, err := os.ReadFile(s.configPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.configPath, append(raw, expressConfig("dynamic")...), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.navigate("open product", chromedp.Navigate(shopURL+"/products/SOCK-42"))
		if b.exists(`button[value="express"]`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Express button did not appear after expressCheckout was switched on in the file")
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.shot("product-express-on")

	// Express flow: the cart goes to kasse, the address and shipping are chosen in "Vipps".
	loc = b.navigate("express", chromedp.Click(chromedp.CSS(`button[value="express"]`)))
	if !strings.HasPrefix(loc, s.simURL+"/") {
		t.Fatalf("Express went to %s, want the Vipps simulator", loc)
	}
	b.do("phone", chromedp.SetValue(chromedp.CSS("#phone"), "41234567"))
	b.shot("express-landing")
	b.navigate("express phone", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	if !b.exists("#postCode") {
		t.Fatal("no address page after the phone number")
	}
	b.shot("express-address")
	b.navigate("express address", chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	if !b.exists(`input[value="pickup-oslo"]`) {
		t.Fatal("kasse's shipping options for an Oslo address lack the Oslo pick-up point")
	}
	b.do("choose pick-up", chromedp.Click(chromedp.CSS(`input[value="pickup-oslo"]`)))
	b.shot("express-shipping")
	loc = b.navigate("express confirm", chromedp.Click(chromedp.CSS(`button[value="confirm"]`)))
	if !strings.HasPrefix(loc, shopURL+"/orders/1002/thanks") {
		t.Fatalf("after the Express payment the browser is at %s", loc)
	}
	// The callback with the address may land a moment after the customer: the page says to reload.
	for deadline := time.Now().Add(5 * time.Second); !b.exists("#shipping"); {
		if time.Now().After(deadline) {
			b.shot("failed-express-thanks")
			t.Fatal("the thank-you page never showed the shipping")
		}
		time.Sleep(100 * time.Millisecond)
		b.navigate("reload thanks", chromedp.Navigate(loc))
	}
	if c := b.text("#customer"); !strings.Contains(c, "Ada Lovelace") {
		t.Fatalf("customer %q", c)
	}
	if a := b.text("#address"); !strings.Contains(a, "Dronning Eufemias gate 42, 0191 OSLO, NO") {
		t.Fatalf("address %q", a)
	}
	if sh := b.text("#shipping"); !strings.Contains(sh, "Pick up in Oslo") {
		t.Fatalf("shipping %q", sh)
	}
	b.shot("express-thanks")
	b.navigate("express order page", chromedp.Navigate(shopURL+"/orders/1002"))
	b.navigate("ship express", chromedp.Click(chromedp.CSS(`form[action$="/capture"] button`)))
	if r := b.text("#result"); !strings.Contains(r, "Captured all that was left") {
		t.Fatalf("express capture result %q", r)
	}
	if !strings.Contains(b.text("#delivery"), "Delivery") || !strings.Contains(b.text("#shipping"), "Pick up in Oslo") {
		t.Fatal("the order page does not show the delivery")
	}
	b.shot("express-order-captured")
}
