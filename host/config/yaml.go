package config

import (
	"errors"
	"fmt"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

// yamlToJSON turns one YAML 1.2 document into JSON for the schema check and the strict decoder. It uses
// goccy/go-yaml, which follows YAML 1.2: an unquoted NO, yes, on or off stays a string (YAML 1.1 read the
// country code NO as false), and a key given twice in one mapping is an error instead of the last one
// winning. A file with more than one document is refused: a second document would otherwise be ignored.
// See "Why the config file is read as YAML 1.2" in RATIONALE.md.
func yamlToJSON(data []byte) ([]byte, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(err)
	}
	if n := len(f.Docs); n > 1 {
		return nil, fmt.Errorf("the file holds %d YAML documents (separated by ---); a config file is one", n)
	}
	doc, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, yamlError(err)
	}
	return doc, nil
}

// yamlError rewrites a go-yaml error as one line, "line L, column C: message", without the source excerpt
// go-yaml adds (a log line is one line, and the excerpt could show a value the file should not hold).
func yamlError(err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return fmt.Errorf("line %d, column %d: %s", tk.Position.Line, tk.Position.Column, ye.GetMessage())
		}
		return errors.New(ye.GetMessage())
	}
	return err
}
