//go:build kasse_stdjson

package ecom

// readWithScanner is false in a build with the kasse_stdjson tag: every provider body is read with
// encoding/json, as idiomatic native Go reads it. BenchmarkPluginBoundary's native baseline for the read
// operations is measured so (go test -tags kasse_stdjson; the module it compares with is built without
// the tag), since the Scanner speeds the native handler up too.
const readWithScanner = false
