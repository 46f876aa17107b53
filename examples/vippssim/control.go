package vippssim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
)

// Approve is the user confirming the payment in the app: the payment is
// reserved (log RESERVE) and the RESERVED callback is sent. phone may be empty
// (then customerInfo.mobileNumber, if any, is kept); otherwise 8 digits.
func (s *Server) Approve(orderID, phone string) error {
	if phone != "" && !phonePattern.MatchString(phone) {
		return fmt.Errorf("approve %q: %w", orderID, ErrInvalidPhone)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.pendingLocked(orderID)
	if err != nil {
		return fmt.Errorf("approve: %w", err)
	}
	if p.express != nil {
		// The express user shares the demo address and takes the default shipping (express.go).
		s.mu.Unlock()
		err := s.ApproveExpress(context.Background(), orderID, ExpressChoice{Phone: phone})
		s.mu.Lock()
		return err
	}
	s.reserveLocked(p, phone, "")
	return nil
}

// Reject is the user cancelling in the app: log CANCEL and the CANCELLED callback.
func (s *Server) Reject(orderID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.pendingLocked(orderID)
	if err != nil {
		return fmt.Errorf("reject: %w", err)
	}
	s.userCancelLocked(p)
	return nil
}

// Expire is the user never acting, whatever the clock says: the payment
// becomes REJECTED and the REJECTED callback carries errorInfo errorCode "45".
func (s *Server) Expire(orderID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.pendingLocked(orderID)
	if err != nil {
		return fmt.Errorf("expire: %w", err)
	}
	s.expireLocked(p)
	return nil
}

// ExpireDue expires every pending payment older than PaymentTTL and returns
// how many it expired. Without it, expiry happens when a payment is touched.
func (s *Server) ExpireDue() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.payments {
		if p.state == StateInitiate {
			s.expireIfDueLocked(p)
			if p.state != StateInitiate {
				n++
			}
		}
	}
	return n
}

// Payment returns a snapshot of the payment with this orderId. It reports
// false if there is none, or if several merchant serial numbers use the orderId.
func (s *Server) Payment(orderID string) (PaymentSnapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.findByOrderLocked(orderID)
	if err != nil {
		return PaymentSnapshot{}, false
	}
	return p.snapshot(), true
}

func (s *Server) pendingLocked(orderID string) (*payment, error) {
	p, err := s.findByOrderLocked(orderID)
	if err != nil {
		return nil, err
	}
	if p.state != StateInitiate {
		return nil, fmt.Errorf("order %q is %s: %w", orderID, p.state, ErrNotPending)
	}
	return p, nil
}

// simRoutes registers the HTTP form of the test controls (see the package doc).
func (s *Server) simRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_sim/payments", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		list := make([]PaymentSnapshot, 0, len(s.payments))
		for _, p := range s.payments {
			s.expireIfDueLocked(p)
			list = append(list, p.snapshot())
		}
		s.mu.Unlock()
		sort.Slice(list, func(i, j int) bool { // creation order; transaction ids grow
			if !list[i].CreatedAt.Equal(list[j].CreatedAt) {
				return list[i].CreatedAt.Before(list[j].CreatedAt)
			}
			return list[i].TransactionID < list[j].TransactionID
		})
		writeJSON(w, http.StatusOK, list)
	})
	m.HandleFunc("GET /_sim/payments/{orderId}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		p, err := s.findByOrderLocked(r.PathValue("orderId"))
		var snap PaymentSnapshot
		if err == nil {
			snap = p.snapshot()
		}
		s.mu.Unlock()
		if err != nil {
			simError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, snap)
	})
	m.HandleFunc("POST /_sim/payments/{orderId}/approve", func(w http.ResponseWriter, r *http.Request) {
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
		simResult(w, s.Approve(r.PathValue("orderId"), in.Phone))
	})
	m.HandleFunc("POST /_sim/payments/{orderId}/reject", func(w http.ResponseWriter, r *http.Request) {
		simResult(w, s.Reject(r.PathValue("orderId")))
	})
	m.HandleFunc("POST /_sim/payments/{orderId}/expire", func(w http.ResponseWriter, r *http.Request) {
		simResult(w, s.Expire(r.PathValue("orderId")))
	})
	m.HandleFunc("GET /_sim/callbacks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Callbacks())
	})
	m.HandleFunc("GET /_sim/callback-mode", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		mode := s.mode
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]string{"mode": mode.String()})
	})
	m.HandleFunc("PUT /_sim/callback-mode", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Mode string `json:"mode"`
		}
		if err := readSimBody(w, r, &in); err != nil {
			simError(w, err)
			return
		}
		if in.Mode == "" {
			in.Mode = r.PostForm.Get("mode")
		}
		mode, ok := ParseCallbackMode(in.Mode)
		if !ok {
			simError(w, fmt.Errorf("callback mode %q: %w", in.Mode, errBadSimRequest))
			return
		}
		s.SetCallbackMode(mode)
		w.WriteHeader(http.StatusNoContent)
	})
}

var errBadSimRequest = errors.New(`want "deliver" or "drop"`)

// readSimBody reads an optional JSON or form body.
func readSimBody(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" {
		if err := r.ParseForm(); err != nil {
			return fmt.Errorf("read form: %w", err)
		}
		return nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

func simResult(w http.ResponseWriter, err error) {
	if err != nil {
		simError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func simError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, ErrUnknownPayment):
		status = http.StatusNotFound
	case errors.Is(err, ErrNotPending), errors.Is(err, ErrAmbiguousOrderID):
		status = http.StatusConflict
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
