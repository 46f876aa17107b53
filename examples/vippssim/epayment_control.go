package vippssim

import (
	"net/http"
)

// HTTP test controls for ePayment payments and webhooks, beside the eCom ones (see the package doc), for
// demos and tests in other processes:
//
//	GET  /_sim/epayments/{reference}          one payment ([EPaymentSnapshot])
//	POST /_sim/epayments/{reference}/approve  optional body {"phone":"4791234567"} or form phone=
//	POST /_sim/epayments/{reference}/reject
//	POST /_sim/epayments/{reference}/expire
//	GET  /_sim/webhooks                       every delivery attempt ([DeliveredWebhook])
func (s *Server) epaymentSimRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_sim/epayments/{reference}", func(w http.ResponseWriter, r *http.Request) {
		snap, ok := s.EPayment(r.PathValue("reference"))
		if !ok {
			simError(w, ErrUnknownPayment)
			return
		}
		writeJSON(w, http.StatusOK, snap)
	})
	m.HandleFunc("POST /_sim/epayments/{reference}/approve", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Phone string `json:"phone"`
		}
		if err := readSimBody(w, r, &in); err != nil {
			simError(w, err)
			return
		}
		if in.Phone == "" {
			in.Phone = r.PostForm.Get("phone")
		}
		simResult(w, s.ApproveEPayment(r.PathValue("reference"), in.Phone))
	})
	m.HandleFunc("POST /_sim/epayments/{reference}/reject", func(w http.ResponseWriter, r *http.Request) {
		simResult(w, s.RejectEPayment(r.PathValue("reference")))
	})
	m.HandleFunc("POST /_sim/epayments/{reference}/expire", func(w http.ResponseWriter, r *http.Request) {
		simResult(w, s.ExpireEPayment(r.PathValue("reference")))
	})
	m.HandleFunc("GET /_sim/webhooks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Webhooks())
	})
}
