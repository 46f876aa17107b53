//go:build !kasse_stdjson

package epayment

// readWithScanner says whether decodeFast reads provider bodies with sdk.Scanner first. Only a build with
// the kasse_stdjson tag turns it off (scanner_off.go).
const readWithScanner = true
