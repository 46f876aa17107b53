package upgrade

import "testing"

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.2.0-rc.1", "1.2.0", -1},
		{"1.2.0", "1.2.0-rc.1", 1},
		{"1.2.0-rc.2", "1.2.0-rc.10", -1},
		{"1.2.0-alpha", "1.2.0-alpha.1", -1},
		{"1.10.0", "1.9.0", 1},
		{"2.0.0", "10.0.0", -1},
		{"1.0.0", "1.0.0", 0},
		{"1.0.0+b", "1.0.0+a", 1}, // build metadata has no precedence; the text breaks the tie
		{"sha256-abc", "0.0.1", -1},
		{"0.0.1", "sha256-abc", 1},
	}
	for _, tc := range tests {
		if got := compareVersions(tc.a, tc.b); sign(got) != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestIsSemVer(t *testing.T) {
	for v, want := range map[string]bool{
		"1.2.0": true, "1.2.0-rc.1": true, "1.2.0+build.5": true, "1.2.0-rc.1+b": true,
		"1.2": false, "1": false, "v1.2.0": false, "1.2.0-": false, "01.2.0": false, "sha256-abcdef": false,
	} {
		if got := isSemVer(v); got != want {
			t.Errorf("isSemVer(%q) = %v, want %v", v, got, want)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
