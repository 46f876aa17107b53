package host_test

// The kasse command serves the built-in platform adapters by importing them; so do these tests.
import _ "github.com/kassehq/kasse/adapters/standard"
