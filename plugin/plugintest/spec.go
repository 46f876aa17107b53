package plugintest

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// Spec checks a plugin's golden vectors against its provider's OpenAPI description: every request a build
// operation produces must name an operation of the description and pass CheckRequest; every provider answer
// a read vector records must validate against the response schema of the operation its build operation
// calls, and every callback must pass CheckCallback, unless the vector is listed in OffSpec. Every vector
// listed in OffSpec must fail, so that the list cannot go stale.
type Spec struct {
	// Doc names the description in messages, e.g. "epayment-v1.yaml".
	Doc string
	// Router finds the description's operations.
	Router routers.Router
	// BaseURL is the provider's server that requests are routed against, e.g. "https://api.vipps.no".
	BaseURL string
	// Handle is the plugin's handler, which builds the request a read vector's answer answers.
	Handle sdk.HandlerFunc
	// BuildFor names, for each of the plugin's own read operations whose answer is checked, the build
	// operation whose request it reads the answer to. The ABI's pairs (read_initiate reads the answer to
	// build_initiate's request, and so on for capture, cancel, refund and details) need not be listed.
	BuildFor map[abi.Op]abi.Op
	// MediaTypes are the media types of answer bodies, in order of preference.
	MediaTypes []string
	// What names, in messages, what is validated, e.g. "Vipps answer or callback".
	What string
	// OffSpec lists the vectors whose answer or callback deliberately differs from the description, each
	// with the reason.
	OffSpec map[string]string
	// CheckRequest checks a request a build operation produced (a successful output with a Request).
	CheckRequest func(t *testing.T, s *Spec, r *abi.Request)
	// CheckCallback validates the callback of a read_callback input; nil means it is valid.
	CheckCallback func(in *abi.Input) error
}

// Test runs the checks on every case, one subtest each, and fails if no case produced a request.
func (s *Spec) Test(t *testing.T, cases []Case) {
	requests := 0
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if c.Out.OK && c.Out.Request != nil {
				s.CheckRequest(t, s, c.Out.Request)
				requests++
			}
			in := c.In
			var answerErr error
			checked := false
			switch {
			case in.Op == abi.OpReadCallback && len(in.Callback) > 0:
				answerErr, checked = s.CheckCallback(in), true
			case s.buildFor(in.Op) != "" && in.Response != nil:
				answerErr, checked = s.checkAnswer(t, in), true
			}
			if !checked {
				if _, listed := s.OffSpec[c.Name]; listed {
					t.Errorf("listed in offSpec, but has no %s", s.What)
				}
				return
			}
			reason, listed := s.OffSpec[c.Name]
			switch {
			case listed && answerErr == nil:
				t.Errorf("listed in offSpec (%s), but its %s validates: remove it from the list", reason, s.What)
			case !listed && answerErr != nil:
				t.Errorf("%s violates the spec: %v", s.What, answerErr)
			}
		})
	}
	if requests == 0 {
		t.Fatal("no vector produced a request")
	}
}

// Route finds the operation of the description that r calls; the test fails if there is none.
func (s *Spec) Route(t testing.TB, r *abi.Request) *routers.Route {
	t.Helper()
	req := httptest.NewRequest(r.Method, s.BaseURL+r.Path, nil)
	rt, _, err := s.Router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is no operation of %s: %v", r.Method, r.Path, s.Doc, err)
	}
	return rt
}

// buildFor returns the build operation whose request the read operation op reads the answer to, or "".
func (s *Spec) buildFor(op abi.Op) abi.Op {
	switch op {
	case abi.OpReadInitiate:
		return abi.OpBuildInitiate
	case abi.OpReadCapture:
		return abi.OpBuildCapture
	case abi.OpReadCancel:
		return abi.OpBuildCancel
	case abi.OpReadRefund:
		return abi.OpBuildRefund
	case abi.OpReadDetails:
		return abi.OpBuildDetails
	}
	return s.BuildFor[op]
}

// checkAnswer validates the provider answer a read operation was given against the response schema of the
// operation its build operation (BuildFor) calls: the one declared for the answer's status, else the
// default response, with the first of MediaTypes it declares. It returns nil if the answer validates.
func (s *Spec) checkAnswer(t *testing.T, in *abi.Input) error {
	t.Helper()
	build := *in
	build.Op, build.Response = s.buildFor(in.Op), nil
	if build.Operation == nil {
		build.Operation = &abi.Operation{Amount: in.Session.Amount}
	}
	bout := s.Handle(&build)
	if !bout.OK {
		t.Fatalf("the vector's %s fails: %+v", build.Op, bout.Error)
	}
	op := s.Route(t, bout.Request).Operation
	resp := op.Responses.Status(in.Response.Status)
	if resp == nil {
		resp = op.Responses.Default()
	}
	if resp == nil || resp.Value == nil {
		return errors.New("no response declared for this status")
	}
	var mt *openapi3.MediaType
	for _, name := range s.MediaTypes {
		if mt = resp.Value.Content.Get(name); mt != nil {
			break
		}
	}
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return errors.New("no JSON schema for this response")
	}
	if len(in.Response.Body) == 0 {
		return errors.New("no body")
	}
	var body any
	if err := json.Unmarshal(in.Response.Body, &body); err != nil {
		return err
	}
	if _, isString := body.(string); isString {
		return errors.New("body is a JSON string: the host's encoding of a non-JSON body")
	}
	return mt.Schema.Value.VisitJSON(body)
}
