package vippsspec

import (
	"path/filepath"

	"github.com/getkin/kin-openapi/openapi3"
)

// # Report API quirks
//
// report-v2.yaml (Report API 2.0) is loaded with these narrow patches, to the loaded copy only:
//
//   - Transaction.time has `format: DateTime` and Transaction.ledgerDate a format that is a sentence
//     ("Date in YYYY-MM-DD format."); neither is a format kin-openapi knows. They are read as the spec's own
//     words say: time as date-time, ledgerDate as the pattern ^\d{4}-\d{2}-\d{2}$.
//   - Money is `type: number, format: int32`; minor units are whole numbers, so it is read as an integer
//     (a fractional amount is a violation), without the int32 bound (a ledger balance may exceed it).

// ReportFile is the Report API v2 (ledgers, funds and fees reports).
const ReportFile = "report-v2.yaml"

func (s *Specs) loadReport(dir string) error {
	var err error
	s.Report, s.reportRouter, err = loadDocWith(filepath.Join(dir, ReportFile), nil, func(doc *openapi3.T) {
		if m := doc.Components.Schemas["Money"]; m != nil && m.Value != nil {
			m.Value.Type = &openapi3.Types{openapi3.TypeInteger}
			m.Value.Format = ""
		}
		if tr := doc.Components.Schemas["Transaction"]; tr != nil && tr.Value != nil {
			if p := tr.Value.Properties["time"]; p != nil && p.Value != nil {
				p.Value.Format = "date-time"
			}
			if p := tr.Value.Properties["ledgerDate"]; p != nil && p.Value != nil {
				p.Value.Format = ""
				p.Value.Pattern = `^\d{4}-\d{2}-\d{2}$`
			}
		}
	})
	return err
}
