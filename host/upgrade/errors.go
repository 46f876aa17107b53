package upgrade

import (
	"errors"
	"fmt"
)

// Rule names the check a refused plugin version failed.
type Rule string

// Rules a version can fail, in the order the pipeline applies them.
const (
	// RuleSize: the module (or a file beside it) is over the size limit.
	RuleSize Rule = "size"
	// RuleManifest: the manifest is missing a field, has an invalid one or lacks a required op.
	RuleManifest Rule = "manifest"
	// RuleSignature: no signature where one is required, or it verifies under no trusted key.
	RuleSignature Rule = "signature"
	// RuleDigest: the module or the golden file does not match the digest the manifest pins.
	RuleDigest Rule = "digest"
	// RuleABIVersion: the manifest declares an ABI version the host does not load, or another one than the
	// module reports.
	RuleABIVersion Rule = "abi-version"
	// RuleLoad: the runtime refused the module (imports outside the WASI allow-list, a missing or
	// mistyped export, memory over the cap, a failing start, another ABI version); the message names which.
	RuleLoad Rule = "load"
	// RuleGolden: the version's own golden vectors are missing, malformed or not reproduced.
	RuleGolden Rule = "golden"
	// RuleConformance: the version fails one of the host's conformance vectors.
	RuleConformance Rule = "conformance"
	// RuleFence: one of the version's vectors built a request that changes a value kasse decides.
	RuleFence Rule = "fence"
	// RuleQuarantined: the version was rolled back (it is in the state file's quarantine) and the
	// operator did not force it back.
	RuleQuarantined Rule = "quarantined"
	// RuleSlow: the version's gate took much longer than the active version's.
	RuleSlow Rule = "slow"
	// RuleConflict: another bundle with the same name and version, but other bytes, is already known.
	RuleConflict Rule = "conflict"
)

// RefusedError is why a plugin version was refused. It never becomes active.
type RefusedError struct {
	// Plugin and Version identify the version when they are known (from its manifest).
	Plugin, Version string
	// Rule is the check that failed.
	Rule Rule
	// Err says how.
	Err error
}

// Error implements error, e.g. "upgrade: plugin[vipps-ecom]@1.4.0 refused: digest: module digest mismatch
// (want ..., got ...)".
func (e *RefusedError) Error() string {
	if e.Plugin == "" {
		return fmt.Sprintf("upgrade: plugin refused: %s: %v", e.Rule, e.Err)
	}
	return fmt.Sprintf("upgrade: plugin[%s]@%s refused: %s: %v", e.Plugin, e.Version, e.Rule, e.Err)
}

// Unwrap returns Err.
func (e *RefusedError) Unwrap() error { return e.Err }

// ErrUnknownPlugin is returned (wrapped) for a plugin name the manager has never loaded.
var ErrUnknownPlugin = errors.New("unknown plugin")

// ErrUnknownVersion is returned (wrapped) for a version of a plugin the manager does not hold.
var ErrUnknownVersion = errors.New("unknown version")

// ErrNoPrevious is returned (wrapped) by Rollback when there is nothing to roll back to.
var ErrNoPrevious = errors.New("no previous version to roll back to")

// ErrRefusedVersion is returned (wrapped) when asked to serve a version that was refused or rolled back.
var ErrRefusedVersion = errors.New("version may not serve")

// ErrNotNewer is returned (wrapped) when a version to activate or canary is lower, in SemVer order, than
// a version activated before for its plugin, and the operator did not force it.
var ErrNotNewer = errors.New("version is not newer than every version activated before; force it to go back")
