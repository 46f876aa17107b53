package sdk

import (
	"encoding/json"
	"errors"
	"testing"
)

type intoDoc struct {
	Name  string   `json:"name"`
	On    bool     `json:"on"`
	Inner *intoDoc `json:"inner"`
}

var intoFields = []string{"name", "on", "inner"}

func readIntoDoc(s *Scanner, d *intoDoc) error {
	return s.Fields(intoFields, func(i int) error {
		switch i {
		case 0:
			return s.StringInto(&d.Name)
		case 1:
			return s.BoolInto(&d.On)
		}
		return ObjectInto(s, &d.Inner, readIntoDoc)
	})
}

// readIntoDocIn is readIntoDoc reading the inner document into memory it allocates up front (ObjectIn).
func readIntoDocIn(s *Scanner, d *intoDoc) error {
	return s.Fields(intoFields, func(i int) error {
		switch i {
		case 0:
			return s.StringInto(&d.Name)
		case 1:
			return s.BoolInto(&d.On)
		}
		return ObjectIn(s, &d.Inner, new(intoDoc), readIntoDocIn)
	})
}

// TestReadObjectAgreesWithEncodingJSON: the Into readers decode as encoding/json does (null leaves a
// string or bool as it is, and sets a pointer to nil), and whatever they give up on goes to the general
// reader from a zero value, so the outcome is always encoding/json's.
func TestReadObjectAgreesWithEncodingJSON(t *testing.T) {
	general := func(b []byte, v *intoDoc) error { return json.Unmarshal(b, v) }
	for _, body := range []string{
		`{"name":"a","on":true,"inner":{"name":"b","on":false,"inner":null}}`,
		`{"name":null,"on":null,"inner":null}`,
		`{"name":"a","name":"b"}`,   // repeated member: encoding/json keeps the last
		`{"NAME":"a"}`,              // other case: encoding/json matches it
		`{"name":1}`,                // wrong type: encoding/json's error
		`{"on":"true"}`,             // wrong type
		`{"inner":[]}`,              // wrong type
		`{"name":"a"} {"name":"b"}`, // trailing data
		`[]`, `"x"`, `{`, ``, `{"name":"a\u00e6"}`, `{"name":"\u00e6\ud800\/\u0026\"` + "\xff" + `x"}`,
	} {
		for _, read := range []func(*Scanner, *intoDoc) error{readIntoDoc, readIntoDocIn} {
			var fast, want intoDoc
			errFast := ReadObject([]byte(body), &fast, read, general)
			errWant := general([]byte(body), &want)
			if (errFast == nil) != (errWant == nil) || errFast != nil && errFast.Error() != errWant.Error() {
				t.Errorf("%s: error %v, want %v", body, errFast, errWant)
				continue
			}
			a, _ := json.Marshal(fast)
			b, _ := json.Marshal(want)
			if string(a) != string(b) {
				t.Errorf("%s: read %s, want %s", body, a, b)
			}
		}
	}
	var d intoDoc
	var s Scanner
	s.Reset([]byte(`[1]`))
	if err := s.StringInto(&d.Name); !errors.Is(err, ErrUnlike) {
		t.Errorf("StringInto on an array: %v, want ErrUnlike", err)
	}
}
