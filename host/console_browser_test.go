package host_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kassehq/kasse/host/internal/testredis"
	"github.com/kassehq/kasse/host/upgrade"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
)

// a11yScript returns the accessibility problems of the page: inputs without a label, headings out of
// order (one h1 first, no level skipped), no lang, and text whose colour contrast against its effective
// background (computed from the CSS colours in use) is under WCAG AA (4.5:1, 3:1 for large text).
const a11yScript = `(() => {
  const problems = [];
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const lab = el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
    if (!lab && !el.getAttribute('aria-label') && !el.closest('label')) problems.push('no label: ' + (el.name || el.outerHTML.slice(0, 60)));
  }
  const hs = Array.from(document.querySelectorAll('h1,h2,h3,h4,h5,h6'));
  if (!hs.length || hs[0].tagName !== 'H1') problems.push('the first heading is not h1');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  let prev = 0;
  for (const h of hs) { const l = +h.tagName[1]; if (prev && l > prev + 1) problems.push('heading skips from h' + prev + ' to h' + l + ': ' + h.textContent.trim()); prev = l; }
  if (!document.documentElement.lang) problems.push('no lang on html');
  const parse = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bg = el => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  let checked = 0;
  for (const el of document.querySelectorAll('body *')) {
    if (!Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const st = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    if (st.visibility === 'hidden' || st.display === 'none' || r.width === 0 || r.right < 0) continue;
    const fg = parse(st.color), b = bg(el);
    const l1 = lum(fg), l2 = lum(b), ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), large = size >= 24 || (size >= 18.66 && +st.fontWeight >= 700);
    checked++;
    if (ratio < (large ? 3 : 4.5)) problems.push('contrast ' + ratio.toFixed(2) + ' of ' + st.color + ' on rgb(' + b.r + ',' + b.g + ',' + b.b + ') for "' + el.textContent.trim().slice(0, 40) + '"');
  }
  if (!checked) problems.push('no text was checked');
  return problems;
})()`

// a11y fails the test with the page's accessibility problems.
func (b *browser) a11y(page string) {
	b.t.Helper()
	problems, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](a11yScript))
	if err != nil {
		b.t.Fatalf("%s: accessibility check: %v", page, err)
	}
	for _, p := range problems {
		b.t.Errorf("%s: %s", page, p)
	}
}

// canaryBundle is vipps-ecom as version, with its golden vectors: the same code with another digest.
func canaryBundle(t *testing.T, wasm []byte, version string) upgrade.Bundle {
	t.Helper()
	module := append(append([]byte(nil), wasm...), 0, 12, 10)
	module = append(module, "kasse-test"...)
	module = append(module, '1') // a custom section: another module that behaves the same
	golden, err := upgrade.ReadGoldenDir(filepath.Join(plugintest.ModuleRoot(t), "plugin", "vippsecom", "testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, op := range append(append([]abi.Op(nil), abi.Ops...), abi.ExpressOps...) {
		ops = append(ops, string(op))
	}
	manifest := upgrade.NewManifest("vipps-ecom", version, module, golden, ops).Encode()
	return upgrade.Bundle{Stem: "vipps-ecom", Module: module, Manifest: manifest, Golden: golden}
}

// TestConsoleInBrowser drives the console in headless Chromium against kasse with Redis and the Vipps
// simulator: log in, find a payment by the shop's order reference, capture part of it after the
// confirmation and see the timeline grow, roll back a canary, open every page, on a desktop and a phone
// width, and check each page's accessibility basics. Screenshots go to testresults/screenshots/.
func TestConsoleInBrowser(t *testing.T) {
	b := newBrowser(t)
	dir := t.TempDir() // uploads and rollbacks write into plugins.dir: not the shared one
	wasm, err := os.ReadFile(filepath.Join(pluginDir(t), "vipps-ecom.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vipps-ecom.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, stackOptions{redisURL: testredis.Start(t), adminToken: consoleToken, wasmDir: dir,
		topYAML: settlementYAML})
	ops := httptest.NewServer(s.kasse.OpsHandler())
	t.Cleanup(ops.Close)

	// A payment to find: authorized at the simulator.
	body := checkoutBody(49900)
	body["reference"] = "console-order-7"
	res := s.do("POST", "/v1/checkouts", body)
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.raw)
	}
	id, orderID := res.body["id"].(string), res.body["providerReference"].(string)
	if err := s.sim.Approve(orderID, "91234567"); err != nil {
		t.Fatal(err)
	}
	s.waitState(id, "authorized")

	// A canary of vipps-ecom 9.0.0 on half the new checkouts, through the admin API.
	bundle := canaryBundle(t, wasm, "9.0.0")
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	for field, data := range map[string][]byte{"module": bundle.Module, "manifest": bundle.Manifest, "golden": bundle.Golden} {
		w, _ := mw.CreateFormFile(field, field)
		_, _ = w.Write(data)
	}
	_ = mw.WriteField("mode", "canary")
	_ = mw.WriteField("percent", "50")
	_ = mw.Close()
	if up := s.ops("POST", "/admin/v1/plugins/vipps-ecom/versions", &form, "Authorization", "Bearer "+consoleToken,
		"Content-Type", mw.FormDataContentType()); up.status != http.StatusCreated {
		t.Fatalf("canary upload: %d %s", up.status, up.raw)
	}

	// Log in.
	loc := b.navigate("open console", chromedp.Navigate(ops.URL+"/console/"))
	if !strings.HasSuffix(loc, "/console/login") {
		t.Fatalf("the console without a login went to %s", loc)
	}
	b.a11y("login")
	b.shot("login")
	b.do("fill login", chromedp.SetValue(chromedp.CSS("#name"), "Kari Nordmann"),
		chromedp.SetValue(chromedp.CSS("#token"), consoleToken))
	loc = b.navigate("log in", chromedp.Click(chromedp.CSS(`form[action="/console/login"] button`)))
	if !strings.HasSuffix(loc, "/console/payments") {
		t.Fatalf("after the login the browser is at %s", loc)
	}
	if who := b.text(".who"); who != "Kari Nordmann" {
		t.Fatalf("logged in as %q", who)
	}
	b.a11y("payments")
	b.shot("payments")

	// Find it by the shop's order reference.
	b.do("search", chromedp.SetValue(chromedp.CSS("#q"), "console-order-7"))
	loc = b.navigate("find", chromedp.Click(chromedp.CSS(`form[role="search"] button`)))
	if !strings.HasSuffix(loc, "/console/payments/"+id) {
		t.Fatalf("the search for the shop reference went to %s", loc)
	}
	if st := b.text("#state"); st != "authorized" {
		t.Fatalf("state %q", st)
	}
	before := b.count("#timeline li")
	b.a11y("payment")
	b.shot("payment-authorized")

	// Capture part: 200,00 of 499,00, after the confirmation.
	b.do("amount", chromedp.SetValue(chromedp.CSS("#capture-amount"), "200"))
	b.navigate("capture", chromedp.Click(chromedp.CSS(`form:has(input[value="capture"]) button[type="submit"]`)))
	if lead := b.text(".lead"); !strings.Contains(lead, "200,00 NOK") {
		t.Fatalf("confirmation says %q", lead)
	}
	b.a11y("confirm capture")
	b.shot("confirm-capture")
	loc = b.navigate("confirm capture", chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)))
	if !strings.Contains(loc, "/console/payments/"+id) {
		t.Fatalf("after the capture the browser is at %s", loc)
	}
	if c := b.text("#captured"); c != "200,00" {
		t.Fatalf("captured %q, want 200,00", c)
	}
	if st := b.text("#state"); st != "captured" {
		t.Fatalf("state after capture %q", st)
	}
	if after := b.count("#timeline li"); after <= before {
		t.Fatalf("the timeline did not grow: %d entries before the capture, %d after", before, after)
	}
	if tl := b.text("#timeline"); !strings.Contains(tl, "sent capture 200,00 NOK") {
		t.Fatalf("the timeline lacks the capture:\n%s", tl)
	}
	expectAmounts(t, s.get(id), "state=captured amount=49900 authorized=49900 captured=20000 refunded=0")
	b.a11y("payment captured")
	b.shot("payment-captured")

	// Roll back the canary.
	b.navigate("plugins", chromedp.Navigate(ops.URL+"/console/plugins"))
	if c := b.text("#canary-vipps-ecom"); !strings.Contains(c, "9.0.0 on 50%") {
		t.Fatalf("canary shown as %q", c)
	}
	b.a11y("plugins")
	b.shot("plugins-canary")
	b.navigate("rollback", chromedp.Click(chromedp.CSS(`form:has(input[value="rollback"]) button[type="submit"]`)))
	b.a11y("confirm rollback")
	b.shot("confirm-rollback")
	b.navigate("confirm rollback", chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)))
	if c := b.text("#canary-vipps-ecom"); c != "none" {
		t.Fatalf("canary after the rollback: %q", c)
	}
	if h := b.text("section.plugin .timeline"); !strings.Contains(h, "rolled_back") {
		t.Fatalf("the history lacks the rollback:\n%s", h)
	}
	if st := s.ops("GET", "/admin/v1/plugins/vipps-ecom", nil, "Authorization", "Bearer "+consoleToken); strings.Contains(string(st.raw), `"canary"`) {
		t.Fatalf("the manager still has a canary: %s", st.raw)
	}
	b.shot("plugins-rolled-back")

	// The day closes at Vipps: the settlement report shows the capture, and the payment its settlement.
	days, err := s.sim.CloseLedgerDay("123456")
	if err != nil || len(days) != 1 {
		t.Fatalf("close the ledger day: %+v, %v", days, err)
	}
	s.waitSettled(id)
	b.navigate("settlements", chromedp.Navigate(ops.URL+"/console/settlements?merchant=demo&date="+days[0].LedgerDate))
	if g := b.text("#gross"); !strings.HasPrefix(g, "200,00") {
		t.Fatalf("gross captures shown as %q, want 200,00", g)
	}
	if n := b.count("svg rect"); n != 30 {
		t.Fatalf("the chart has %d bars, want 30", n)
	}
	b.a11y("settlements")
	b.shot("settlements")
	b.navigate("settled payment", chromedp.Navigate(ops.URL+"/console/payments/"+id))
	if !strings.Contains(b.text("main"), days[0].LedgerDate) {
		t.Fatal("the payment does not show its settlement's ledger date")
	}
	b.shot("payment-settled")

	for _, page := range []string{"health"} {
		b.navigate(page, chromedp.Navigate(ops.URL+"/console/"+page))
		b.a11y(page)
		b.shot(page)
		if page == "health" {
			if r := b.text("td.ok"); !strings.Contains(r, "answered HTTP") {
				t.Fatalf("the simulator is not shown reachable: %q", r)
			}
		}
	}

	// A phone.
	b.do("phone size", chromedp.EmulateViewport(390, 844))
	for _, page := range []string{"payments", "payments/" + id, "plugins"} {
		b.navigate(page, chromedp.Navigate(ops.URL+"/console/"+page))
		b.a11y("phone " + page)
		if w := b.scrollWidth(); w > 390+1 {
			t.Errorf("phone %s: the page is %d px wide, more than the screen", page, w)
		}
		b.shot("phone-" + strings.ReplaceAll(page, "/", "-"))
	}
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int]("document.querySelectorAll("+jsString(sel)+").length"))
	if err != nil {
		b.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

func (b *browser) scrollWidth() int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth"))
	if err != nil {
		b.t.Fatalf("scroll width: %v", err)
	}
	return n
}
