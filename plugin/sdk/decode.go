package sdk

import (
	"encoding/json"

	"github.com/kassehq/kasse/plugin/abi"
)

// decoder decodes abi.Input into a reused value.
type decoder struct {
	in abi.Input
}

func (d *decoder) decode(data []byte) (*abi.Input, error) {
	d.in = abi.Input{}
	if err := json.Unmarshal(data, &d.in); err != nil {
		return nil, err
	}
	return &d.in, nil
}
