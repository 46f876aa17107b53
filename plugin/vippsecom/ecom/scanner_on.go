//go:build !kasse_stdjson

package ecom

// readWithScanner says whether decodeFast reads provider bodies with sdk.Scanner first. Only a build with
// the kasse_stdjson tag turns it off (scanner_off.go).
const readWithScanner = true
