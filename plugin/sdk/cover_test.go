package sdk

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
)

// populate sets every field reachable from v to a distinct non-zero value: two elements per slice, every
// pointer allocated, raw JSON as a small object. The codec tests below use it so that a field added to
// plugin/abi without codec support fails them.
func populate(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + strconv.Itoa(*n) + " <é>")
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n) * 1001)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		populate(v.Elem(), n)
	case reflect.Struct:
		for i := range v.NumField() {
			populate(v.Field(i), n)
		}
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes([]byte(`{"k":` + strconv.Itoa(*n) + `}`))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		populate(v.Index(0), n)
		populate(v.Index(1), n)
	default:
		panic("populate: unsupported kind " + v.Kind().String())
	}
}

func TestDecodeCoversInput(t *testing.T) {
	var want abi.Input
	populate(reflect.ValueOf(&want).Elem(), new(int))
	data, err := json.Marshal(&want)
	if err != nil {
		t.Fatal(err)
	}
	var d decoder
	got, err := d.decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, &want) {
		g, _ := json.Marshal(got)
		t.Fatalf("a field of abi.Input is not decoded:\n got %s\nwant %s", g, data)
	}
}

func TestEncodeCoversOutput(t *testing.T) {
	var out abi.Output
	populate(reflect.ValueOf(&out).Elem(), new(int))
	want, err := json.Marshal(&out)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendOutput(nil, &out); !bytes.Equal(got, want) {
		t.Fatalf("a field of abi.Output is not encoded:\n got %s\nwant %s", got, want)
	}
}
