// Package upgradetest owns test support for plugin upgrades: the variants of the malicious test plugin
// (host/upgrade/testdata/evil), made from one built module by rewriting the attack it carries.
package upgradetest

import (
	"bytes"
	"fmt"
	"strings"
)

// EvilPkg is the Go package of the malicious test plugin, to build with plugintest.BuildAll.
const EvilPkg = "./host/upgrade/testdata/evil"

// Attacks are the attacks the malicious plugin knows. "slow" is slow on every call (the gate must refuse
// it); the others misbehave on live traffic only, and pass the golden and conformance vectors.
var Attacks = []string{"redirect", "callback", "fallback", "token", "amount", "msn", "polite", "slow"}

const (
	marker  = "kasse-evil-mode:"
	modeLen = len("kasse-evil-mode:none____________")
)

// EvilVariant returns a copy of the built malicious module that carries attack instead of "none".
func EvilVariant(module []byte, attack string) ([]byte, error) {
	orig := []byte(marker + "none" + strings.Repeat("_", modeLen-len(marker)-len("none")))
	if len(marker)+len(attack) > modeLen {
		return nil, fmt.Errorf("upgradetest: attack %q too long", attack)
	}
	if n := bytes.Count(module, orig); n != 1 {
		return nil, fmt.Errorf("upgradetest: the mode marker occurs %d times in the module, want 1", n)
	}
	repl := []byte(marker + attack + strings.Repeat("_", modeLen-len(marker)-len(attack)))
	return bytes.Replace(module, orig, repl, 1), nil
}
